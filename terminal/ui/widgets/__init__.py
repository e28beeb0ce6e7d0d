"""Widgets shared by the cashier screens."""
