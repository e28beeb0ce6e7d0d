"""Helpers every command module shares: the subparsers type, common flags, settings from flags."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeAlias

from cardkit.config import Settings, load_settings

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--data-dir``, accepted by every command that touches settings."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $CARDPOS_CONFIG or the platform config dir)")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (overrides the config)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "data_dir", None) is not None:
        settings.data_dir = args.data_dir
    return settings


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print a command result: JSON for machines, one or more human lines otherwise."""
    if as_json:
        json.dump(result, sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(text)
