"""cardpos terminal: the counter-side program (reader, card checks, offline journal, sync, UI)."""

__version__ = "0.1.0"
