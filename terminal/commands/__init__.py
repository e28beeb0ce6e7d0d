"""CLI command groups of the terminal side (card, reader, terminal, demo)."""
