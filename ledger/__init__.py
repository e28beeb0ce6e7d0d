"""The central ledger: HTTP API, storage, ingest, anomalies, alerts, admin CLI."""
