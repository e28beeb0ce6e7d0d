"""Campaigns: greetings by a daily job and promotions to a segment, by SMS and mail, measured against a holdout.

| module | job |
|---|---|
| ``model`` | occasions, quiet hours, frequency cap, templates, idempotency keys, holdout draw (pure) |
| ``config`` | ``campaigns.toml``: channels, quiet hours, cap, unsubscribe URL |
| ``tables`` | campaigns, their messages (the outbox, unique per idempotency key), callbacks seen |
| ``segments`` | the ``SegmentSource`` protocol promotions draw their members from |
| ``plan`` | create campaigns; plan greetings (daily) and promotions into messages |
| ``send`` | deliver due messages: consent, quiet hours, cap, coupon, SMS or mail, retries and throttling |
| ``unsubscribe`` | signed one-click unsubscribe tokens (RFC 8058) |
| ``inbound`` | the gateway's signed callbacks: receipts, STOP and the other refusals |
| ``results`` | sent, delivered, failed, opted out, coupons redeemed, sales against the holdout |
| ``web`` | the unsubscribe and SMS callback endpoints on the console process |
| ``cli`` | ``cardpos ledger campaigns ...`` and ``cardpos ledger member facts`` |

See docs/campaigns.md.
"""
