"""The key footer, without the per-recompose leak of Textual's own.

Textual's ``Footer`` binds each ``FooterKey`` to its ``compact`` reactive with ``data_bind``; the footer keeps
every binding it ever made, so each recompose (every bindings change: a screen reloading, focus moving)
leaves the old keys alive. A cashier's screens run for a whole shift, so this footer composes the same keys
without the data binding (the app never uses the compact style).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class CashierFooter(Footer):
    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys: dict[str, FooterKey] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in keys:  # one key per action, as Textual's footer shows
                key = FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                                binding.action, disabled=not enabled, tooltip=tooltip)
                key.set_reactive(FooterKey.compact, self.compact)  # what data_bind would have set, once
                keys[binding.action] = key
        self.styles.grid_size_columns = len(keys)
        yield from keys.values()
