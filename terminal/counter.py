"""The counter service (see terminal/service/): one cashier operation = verify / quote -> journal -> receipt.

    with open_counter(settings) as counter:
        tap = counter.tap(token)
        receipt = counter.sale(tap.claims, Money.parse("12.50"), tender="sv", cashier_id="c1")
"""

from terminal.service.counter import Counter
from terminal.service.loader import load_rules, load_verifier, open_counter
from terminal.service.receipt import Receipt
from terminal.service.views import MemberView, OperationView, TapResult
from terminal.service.zreport import ZReport

__all__ = ["Counter", "MemberView", "OperationView", "Receipt", "TapResult", "ZReport", "load_rules",
           "load_verifier", "open_counter"]
