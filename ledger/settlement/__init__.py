"""Settlement between the merchants of one program (issue 17).

``funding`` (pure) says who funded what for one applied entry; ``records`` holds the tables; ``hook`` writes the
funding lines as entries are applied; ``model`` (pure) computes a period's statement, the netting and the
liability and reserve report; ``books`` reads and writes periods (close, sign, audit); ``checks`` are the
invariants ``ledger verify`` runs; ``cli`` is ``cardpos ledger settlement``.
"""
