"""The cardpos kernel: what the terminal, the ledger and the simulators share, and nothing else.

Errors, money and the loyalty fold (``core``), card tokens and COSE (``cards``), the journal entry format and hash
chain (``journal``), the sync batch envelope (``envelope``), the signed pull documents and the HTTP names and
signature texts (``pulldocs``, ``wire``), the reader frame protocol and CRC (``frames``, ``crc``), the wallet file,
typed config, paths and JSON logging. It imports no application.
"""

__version__ = "0.1.0"
