"""Card tokens: COSE_Sign1/CBOR format, verification, trust list, revocations. Pure: no I/O."""
