"""Pure domain: money, members, loyalty rules, risk limits. No I/O, no UI, no database."""
