"""Typed settings: a TOML file plus ``CARDPOS_*`` environment overrides.

File lookup: ``--config PATH``, else ``$CARDPOS_CONFIG``, else the platform config dir. A missing default file
means defaults; a missing file that was asked for by name is an error. Environment variables override the
file: ``CARDPOS_<SECTION>_<FIELD>`` (for example ``CARDPOS_READER_PORT`` or ``CARDPOS_PRINTER_URL``), and
``CARDPOS_DATA_DIR``. Sections: ``[terminal]``, ``[reader]``, ``[sync]``, ``[printer]``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardkit import locations
from cardkit.errors import ConfigError


@dataclass
class ReaderSettings:
    port: str = ""
    """pyserial URL of the card reader: /dev/ttyUSB0, /dev/pts/N, socket://host:port, loop://."""
    baud: int = 115200
    """Line speed in bits per second."""
    debounce_ms: int = 1500
    """The same card tapped again within this window counts once."""
    heartbeat_timeout_s: float = 5.0
    """Silence longer than this (no heartbeat) means the reader is gone; reconnect."""


@dataclass
class PrinterSettings:
    url: str = ""
    """The receipt printer (docs/printer.md): ``serial:///dev/ttyUSB0?baud=19200``, a device or link path,
    ``tcp://HOST[:PORT]`` for a network printer, ``usb://VID:PID``. Empty: no printer; receipts and Z-reports are
    saved as text files in the data dir's receipts/ folder instead."""
    zh_mode: str = "codepage"
    """How Chinese is printed: ``codepage`` (GB18030 from the printer's own font, printers sold in China) or
    ``raster`` (drawn here with a CJK font and sent as images: any ESC/POS printer)."""
    columns: int = 48
    """Characters per printed line: 48 on 80 mm paper, 32 on 58 mm (a Chinese character takes two)."""
    cut: str = "full"
    """How each receipt is cut off: ``full`` or ``partial`` (leaves a hinge)."""
    font: str = ""
    """A CJK font file for raster mode (empty: Noto Sans CJK or WenQuanYi when installed)."""


PRINTER_ZH_MODES = ("codepage", "raster")
PRINTER_CUTS = ("full", "partial")
PRINTER_COLUMNS = (16, 255)
"""The fewest and most columns a receipt is laid out in."""


@dataclass
class SyncSettings:
    ledger_url: str = ""
    """Base URL of the central ledger, e.g. http://127.0.0.1:8750."""
    interval_s: float = 30.0
    """Seconds between background syncs when online."""
    timeout_s: float = 10.0
    """Timeout for every HTTP call."""
    batch_bytes: int = 256 * 1024
    """Upper bound on the encoded size of one pushed batch."""
    authorize_timeout_s: float = 0.8
    """How long a stored-value payment, points redemption or coupon use waits for the ledger's online
    authorization before it is decided offline under the offline limits; 0 turns online authorization off."""


@dataclass
class TerminalSettings:
    lang: str = "en"
    """Screen language: en or zh (Simplified Chinese)."""
    clock_skew_s: int = 300
    """Tolerance when comparing card validity times with this terminal's clock."""
    qr_blocks: str = "sextant"
    """How a card's QR code is drawn on screen: ``sextant`` (fits 80x24; the font needs Unicode 13 sextant blocks)
    or ``half`` (half blocks, in every font, scrolled). F7 on the QR screens switches at the counter."""


QR_BLOCKS = ("sextant", "half")
"""The ways ``cardkit.qr.qr_text`` draws a code (its ``QrBlocks``), named here so reading the settings loads no
QR code."""


@dataclass
class Settings:
    data_dir: Path = field(default_factory=locations.default_data_dir)
    """Where the journal, keys, logs and receipts live."""
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)

    @property
    def db_path(self) -> Path:
        return locations.terminal_db(self.data_dir)

    @property
    def keys_dir(self) -> Path:
        return locations.keys_dir(self.data_dir)

    @property
    def log_path(self) -> Path:
        return locations.log_file(self.data_dir)


_SECTIONS = {"terminal": TerminalSettings, "reader": ReaderSettings, "sync": SyncSettings,
             "printer": PrinterSettings}
# Settings that are no longer read: a config file that still sets them keeps loading, and they are ignored. The
# currency comes from the ledger's signed rules and the store from the enrollment.
_RETIRED: dict[str, frozenset[str]] = {"terminal": frozenset({"currency", "store_id"})}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    target = {"int": int, "float": float, "str": str, "bool": bool}.get(str(kind))
    if target is None:
        target = kind if isinstance(kind, type) else str
    if target is bool and isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    try:
        return target(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {target.__name__}") from None


def _apply(section_obj: Any, values: dict[str, Any], where: str, retired: frozenset[str] = frozenset()) -> None:
    known = {f.name: f for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key in retired:
            continue
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        setattr(section_obj, key, _coerce(value, known[key].type, f"{where}.{key}"))


def load_settings(config_path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    settings = Settings()
    explicit = config_path is not None or "CARDPOS_CONFIG" in env
    path = config_path or (Path(env["CARDPOS_CONFIG"]) if "CARDPOS_CONFIG" in env else None)
    path = path or locations.default_config_file()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}", orig=exc) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}", orig=exc) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text", orig=exc) from exc
        if "data_dir" in data:
            settings.data_dir = Path(str(data.pop("data_dir"))).expanduser()
        for name, values in data.items():
            if name not in _SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(_SECTIONS)})")
            _apply(getattr(settings, name), values, f"{path}:[{name}]", _RETIRED.get(name, frozenset()))
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    if "CARDPOS_DATA_DIR" in env:
        settings.data_dir = Path(env["CARDPOS_DATA_DIR"]).expanduser()
    for name in _SECTIONS:
        section = getattr(settings, name)
        for f in dataclasses.fields(section):
            var = f"CARDPOS_{name.upper()}_{f.name.upper()}"
            if var in env:
                setattr(section, f.name, _coerce(env[var], f.type, var))
    if settings.terminal.lang not in {"en", "zh"}:
        raise ConfigError(f"language {settings.terminal.lang!r} is not supported (en or zh)")
    if settings.terminal.qr_blocks not in QR_BLOCKS:
        raise ConfigError(f"terminal.qr_blocks {settings.terminal.qr_blocks!r} is not one of: {', '.join(QR_BLOCKS)}")
    _check_printer(settings.printer)
    return settings


def _check_printer(printer: PrinterSettings) -> None:
    if printer.zh_mode not in PRINTER_ZH_MODES:
        raise ConfigError(f"printer.zh_mode {printer.zh_mode!r} is not one of: {', '.join(PRINTER_ZH_MODES)}")
    if printer.cut not in PRINTER_CUTS:
        raise ConfigError(f"printer.cut {printer.cut!r} is not one of: {', '.join(PRINTER_CUTS)}")
    low, high = PRINTER_COLUMNS
    if not low <= printer.columns <= high:
        raise ConfigError(f"printer.columns must be {low} to {high}, not {printer.columns}")
