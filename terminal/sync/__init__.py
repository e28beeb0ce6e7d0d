"""Terminal synchronisation with the central ledger: batches, HPKE sealing, the HTTP client."""
