"""The cashier and technician Textual app."""
