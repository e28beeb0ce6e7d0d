from __future__ import annotations

from pathlib import Path

import pytest

from cardkit.config import load_settings
from cardkit.errors import ConfigError


def _defaults(tmp_path: Path):  # the platform default config file path is absent in tests
    return load_settings(env={"CARDPOS_DATA_DIR": str(tmp_path)})


def test_defaults_when_no_file(tmp_path: Path) -> None:
    s = _defaults(tmp_path)
    assert s.data_dir == tmp_path
    assert s.reader.baud == 115200


def test_file_and_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n[reader]\nport = "loop://"\nbaud = 9600\n[terminal]\nlang = "zh"\n')
    s = load_settings(cfg, env={"CARDPOS_READER_BAUD": "19200"})
    assert s.reader.port == "loop://"
    assert s.reader.baud == 19200
    assert s.terminal.lang == "zh"
    assert s.data_dir == tmp_path


def test_a_config_that_still_sets_retired_settings_keeps_loading(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[terminal]\nlang = "zh"\ncurrency = "CNY"\nstore_id = "store-1"\nclock_skew_s = 60\n')
    s = load_settings(cfg, env={"CARDPOS_DATA_DIR": str(tmp_path), "CARDPOS_TERMINAL_CURRENCY": "EUR"})
    assert (s.terminal.lang, s.terminal.clock_skew_s) == ("zh", 60)
    assert not hasattr(s.terminal, "currency") and not hasattr(s.terminal, "store_id")


def test_retired_settings_are_still_unknown_in_other_sections(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[reader]\ncurrency = 'CNY'\n")
    with pytest.raises(ConfigError, match="unknown setting 'currency'"):
        load_settings(cfg, env={})


@pytest.mark.parametrize("text,fragment", [
    ("[reader]\nbaud = 'fast'\n", "not a valid int"),
    ("[nope]\nx = 1\n", "unknown section"),
    ("[reader]\nspeed = 1\n", "unknown setting"),
    ("[terminal]\nlang = 'fr'\n", "not supported"),
    ("[reader\n", "not valid TOML"),
    ("[printer]\nzh_mode = 'bitmap'\n", "printer.zh_mode 'bitmap' is not one of: codepage, raster"),
    ("[printer]\ncut = 'none'\n", "printer.cut 'none' is not one of: full, partial"),
    ("[printer]\ncolumns = 8\n", "printer.columns must be 16 to 255, not 8"),
    ("[printer]\npaper = 80\n", "unknown setting 'paper'"),
    ("[terminal]\nqr_blocks = 'quarter'\n", "terminal.qr_blocks 'quarter' is not one of: sextant, half"),
])
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, env={})


def test_named_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_the_printer_section(tmp_path: Path) -> None:
    assert _defaults(tmp_path).printer.url == ""  # no printer: receipts are saved as text files
    cfg = tmp_path / "c.toml"
    cfg.write_text('[printer]\nurl = "serial:///dev/ttyUSB0?baud=19200"\nzh_mode = "raster"\ncolumns = 32\n')
    s = load_settings(cfg, env={"CARDPOS_DATA_DIR": str(tmp_path), "CARDPOS_PRINTER_CUT": "partial"})
    assert (s.printer.url, s.printer.zh_mode, s.printer.columns, s.printer.cut) == (
        "serial:///dev/ttyUSB0?baud=19200", "raster", 32, "partial")


def test_the_qr_blocks_setting(tmp_path: Path) -> None:
    from typing import get_args

    from cardkit.config import QR_BLOCKS
    from cardkit.qr import QrBlocks

    assert get_args(QrBlocks) == QR_BLOCKS  # the settings offer exactly the drawings cardkit.qr has
    assert _defaults(tmp_path).terminal.qr_blocks == "sextant"
    cfg = tmp_path / "c.toml"
    cfg.write_text('[terminal]\nqr_blocks = "half"\n')
    assert load_settings(cfg, env={}).terminal.qr_blocks == "half"
    assert load_settings(cfg, env={"CARDPOS_TERMINAL_QR_BLOCKS": "sextant"}).terminal.qr_blocks == "sextant"
