"""Bringing an existing loyalty program onto cardpos (issue 17): ``cardpos ledger import`` of merchants, stores and
members (with consents, balances, points, tiers and card numbers) from CSV.

- ``rows``: the CSV files read into checked rows, every bad row refused with its line number and reason (pure);
- ``staging``: the import's own tables (what each member row was imported as, its consents and card numbers);
- ``run``: applying the checked rows to the open ledger, idempotently, with the reconciliation report;
- ``cli``: the command.
"""
