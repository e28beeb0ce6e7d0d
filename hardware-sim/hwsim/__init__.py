"""Device simulators: a serial card reader (``cardpos sim``: a wallet of cards, fault injection) and an ESC/POS
receipt printer (``cardpos sim-printer``: tickets rendered to text and PNG, paper/cover/offline states), each on a
pty or TCP."""
