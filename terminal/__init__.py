"""cardpos terminal: the counter-side application (reader, card checks, offline journal, sync, UI)."""
