"""SMS for the ledger: a provider interface over an HTTP gateway, and the gateway's signed callbacks.

| module | job |
|---|---|
| ``provider`` | ``SmsProvider``, ``SendResult``, ``HttpSmsProvider`` (never raises) |
| ``config`` | ``HttpSmsConfig`` from a TOML table: URL, credentials, field mapping |
| ``mapping`` | the gateway's field names, the message id in its answer, ``Retry-After`` (pure) |
| ``callbacks`` | ``verify`` the ``t=…,v1=…`` signature, parse receipts and inbound replies |
| ``keywords`` | ``is_opt_out`` and ``is_balance_query`` on a member's reply (pure) |
| ``inbound`` | act on verified callbacks: receipts, refusals (SMS consent withdrawn), registered handlers |

Campaigns (``ledger.campaigns``) and SMS alerts (``ledger.delivery``) send through ``HttpSmsProvider``; see
docs/sms-gateway.md and docs/campaigns.md.
"""
