"""The import's own tables: what each member row was imported as (so a re-run recognises it), the consents the
old system knew (kept here until ``ledger.member_facts`` records them), and members' old card numbers."""

from __future__ import annotations

import peewee

from ledger import store


class ImportedMember(store.BaseModel):
    """One member brought in by ``cardpos ledger import``: the digest of the row it came from (a re-run of the same
    row changes nothing; a different row for the same member is refused), and the consents the row gave
    (purpose -> given; a purpose the old system did not know is absent)."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    digest = peewee.CharField(max_length=64)
    consents = store.JSONField(default=dict)
    source = peewee.TextField(default="")  # the file's name and SHA-256 prefix
    line = peewee.IntegerField()
    imported_ms = peewee.BigIntegerField()

    class Meta:
        table_name = "import_member"


class LegacyCard(store.BaseModel):
    """A card number of the program's previous system and the member it belongs to: staff find the member by
    the old number until the member gets a cardpos card."""

    card_number = peewee.CharField(primary_key=True, max_length=40)
    member_id = peewee.CharField(max_length=40, index=True)

    class Meta:
        table_name = "import_legacy_card"


MODELS: list[type[peewee.Model]] = [ImportedMember, LegacyCard]
store.register_models(*MODELS)
