"""The admins' web console: its own FastAPI app and listener (``cardpos ledger console``, default 127.0.0.1:8760),
apart from the terminals' API. Server-rendered Jinja2 pages, every asset served by the console itself, a role
check on every route (``roles.ROUTES``), and every read of personal data in the audit log. See docs/console.md.
"""
