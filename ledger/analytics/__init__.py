"""Learning from members (issue 18): RFM scores and segments, lifetime value to date and projected, spend per
tier, visit frequency, cohort retention and the top quarter's share of sales, per program, merchant or store
over any period.

Layout, core apart from I/O:

- ``facts``, ``calendar``, ``rfm``, ``ltv``, ``projection``, ``concentration``, ``cohorts``: pure computation
  (no database); ``population`` keeps one pass's per-member columns and values them (pure too).
- ``models`` + ``catchup``: the derived table ``analytics_member_day`` (one row per member, store, UTC day and
  currency), folded incrementally from the applied entries like the console's roll-up.
- ``queries``: the SQL aggregates over that table (SQLite and PostgreSQL).
- ``reports``: the four reports (members, sales, segments, cohorts) assembled from the aggregates, and
  ``lifetime`` the fifth (ltv: projected lifetime value per tier, segment, store, merchant or member).
- ``segments``: ``segment_members`` for campaigns.
- ``scope``: which stores a report covers (a store, a merchant's stores, or the whole program).

What each figure means and how it is computed: docs/analytics.md.
"""
