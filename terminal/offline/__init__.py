"""Offline storage on the terminal: SQLite journal (append-only), member cache, at-rest encryption."""
