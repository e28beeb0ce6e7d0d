"""Card reader simulator: a fake serial reader on a pty or TCP, with a wallet of cards and fault injection."""
