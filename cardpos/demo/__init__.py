"""``cardpos demo``: a ledger, the reader simulator and the cashier app on embedded defaults."""
