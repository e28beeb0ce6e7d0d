"""The cardpos product: the ``cardpos`` command line that mounts each application's commands, and the demo
(the one place that starts the terminal, the ledger and the simulator together)."""
