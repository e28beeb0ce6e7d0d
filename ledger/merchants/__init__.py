"""One program, several merchants: the program → merchants → stores → terminals model (issue 17).

``models`` holds the tables, ``overrides`` the pure per-merchant rule overrides, ``admin`` the operations on the
open ledger, ``cli`` the ``cardpos ledger merchant`` and ``cardpos ledger program`` commands.
"""
