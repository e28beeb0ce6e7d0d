"""The key footer, without the per-recompose leak of Textual's own.

Textual's ``Footer`` binds each ``FooterKey`` to its ``compact`` reactive with ``data_bind``; the footer keeps
every binding it ever made, so each recompose (every bindings change: a screen reloading, focus moving)
leaves the old keys alive. A cashier's screens run for a whole shift, so this footer composes the same keys
without the data binding (the app never uses the compact style).

It also recomposes only when the keys it would show changed: Textual's footer recomposes on every bindings
signal (each focus move, each ``refresh_bindings``), dozens of times per sale, rebuilding identical keys.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class CashierFooter(Footer):
    # One space before each key instead of one on each side: the member screen's ten keys fit 80 columns.
    DEFAULT_CSS = """
    CashierFooter FooterKey .footer-key--key { padding: 0 0 0 1; }
    CashierFooter FooterKey .footer-key--description { padding: 0 0 0 1; }
    """
    _shown: tuple[Any, ...] | None = None
    """What the last compose showed (see ``_keys_shown``); None before the first."""

    def _keys_shown(self) -> tuple[Any, ...]:
        return (self.compact, tuple(
            (binding.key, self.app.get_key_display(binding), binding.description, binding.action, enabled, tooltip)
            for _, binding, enabled, tooltip in self.screen.active_bindings.values() if binding.show))

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached or self._keys_shown() == self._shown:
            return
        await self.recompose()

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._shown = self._keys_shown()
        keys: dict[str, FooterKey] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in keys:  # one key per action, as Textual's footer shows
                key = FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                                binding.action, disabled=not enabled, tooltip=tooltip)
                key.set_reactive(FooterKey.compact, self.compact)  # what data_bind would have set, once
                keys[binding.action] = key
        self.styles.grid_size_columns = len(keys)
        yield from keys.values()
