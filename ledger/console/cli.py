"""cardpos ledger console / cardpos ledger admin ...: the admins' web console and their accounts.

Wiring only, like ``ledger.cli``: parse, open the ledger (which runs the console's migration step), call
``ledger.console.accounts`` or ``ledger.console.server``, print. A generated password and a TOTP secret are
printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cardkit.cliutil import Subparsers, emit
from ledger.cli import Handler, _command, _group, _ledger_dir, _open, at_least, open_checked, port_arg
from ledger.console.roles import Role
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.console.accounts import Credentials

DEFAULT_PORT = 8760


def _open_console(args: argparse.Namespace) -> Path:
    from ledger.console import models

    ledger_dir = _open(args)
    models.create_tables()
    return ledger_dir


def _password_from(args: argparse.Namespace) -> str | None:
    """``--password-env VAR`` (never a password on the command line, where ``ps`` shows it), ``--password-stdin``,
    or None to generate one."""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise LedgerError(f"environment variable {args.password_env} with the password is not set")
        return value
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise LedgerError("no password on standard input")
        return line
    return None


def _credentials_text(creds: Credentials, headline: str) -> str:
    lines = [headline]
    if creds.password:
        lines.append(f"password {creds.password}  (shown once: store it now, change it on the console's Account page)")
    if creds.totp_secret:
        lines.append(f"TOTP secret {creds.totp_secret}  (add it to an authenticator app; shown once)")
        lines.append(f"TOTP URI {creds.totp_uri}")
    return "\n".join(lines)


def _admin_add(args: argparse.Namespace) -> int:
    from ledger.console import accounts

    role = Role.parse(args.role)
    password = _password_from(args)
    _open_console(args)
    creds = accounts.add_admin(args.name, role, password=password, with_totp=args.totp, merchant_id=args.merchant,
                               actor=args.actor)
    emit({"name": creds.name, "role": role.value, "merchant_id": args.merchant, "password": creds.password,
          "totp_secret": creds.totp_secret,
          "totp_uri": creds.totp_uri}, args.json, _credentials_text(creds, f"admin {creds.name} added ({role.value})"))
    return 0


def _admin_list(args: argparse.Namespace) -> int:
    from ledger.console import accounts

    _open_console(args)
    rows = accounts.list_admins()
    text = "\n".join(f"{a.name:<20} {a.role.value:<17} {a.status:<9}{'  totp' if a.has_totp else ''}"
                     f"{'  locked' if a.locked_until_ms else ''}"
                     f"{'  merchant ' + a.merchant_id if a.merchant_id else ''}" for a in rows) or "no admins"
    emit({"admins": [a.as_dict() for a in rows]}, args.json, text)
    return 0


def _admin_status(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from ledger.console import accounts

        _open_console(args)
        if action == "disable":
            accounts.disable_admin(args.name, actor=args.actor)
        else:
            accounts.enable_admin(args.name, actor=args.actor)
        emit({"name": args.name, "status": action}, args.json, f"admin {args.name} {action}d")
        return 0

    return handler


def _admin_reset(args: argparse.Namespace) -> int:
    from ledger.console import accounts

    password = _password_from(args)
    _open_console(args)
    creds = accounts.reset_admin(args.name, password=password, with_totp=args.totp, actor=args.actor)
    emit({"name": creds.name, "password": creds.password, "totp_secret": creds.totp_secret,
          "totp_uri": creds.totp_uri}, args.json,
         _credentials_text(creds, f"admin {creds.name} reset: unlocked, signed out everywhere"))
    return 0


def _console(args: argparse.Namespace) -> int:
    from ledger.console import models
    from ledger.console.server import serve

    if (args.tls_cert is None) != (args.tls_key is None):
        raise LedgerError("give both --tls-cert and --tls-key, or neither")
    ledger_dir = _ledger_dir(args)
    open_checked(ledger_dir, args.db)  # fail here with one sentence, not in the server
    models.create_tables()
    from ledger.console.settings import load_console_settings

    load_console_settings(ledger_dir)  # a bad console.toml is one sentence here, not a failing worker
    return serve(ledger_dir, args.db, host=args.host, port=args.port, workers=args.workers,
                 tls_cert=args.tls_cert, tls_key=args.tls_key)


def _add_password_flags(parser: argparse.ArgumentParser) -> None:
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--password-env", metavar="VAR", default=None,
                     help="take the password from this environment variable (default: generate one)")
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def register(subparsers: Subparsers) -> None:
    p = _command(subparsers, "console", "run the admins' web console (its own listener, default port 8760)",
                 _console, json_flag=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; put a TLS "
                                                      "reverse proxy in front for anything else)")
    p.add_argument("--port", type=port_arg, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--workers", type=at_least(1, high=64), default=1,
                   help="worker processes (use PostgreSQL for more than one)")
    p.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="... and this private key (PEM)")

    admins = _group(subparsers, "admin", "console admin accounts: add, list, disable, enable, reset")
    roles = ", ".join(r.value for r in Role)
    p = _command(admins, "add", "add an admin account (prints a generated password once)", _admin_add)
    p.add_argument("name", help="sign-in name: lowercase letters, digits, . _ -")
    p.add_argument("--role", required=True, help=f"one of {roles}")
    p.add_argument("--totp", action="store_true", help="require a TOTP code (RFC 6238) at sign-in")
    p.add_argument("--merchant", default=None, help="the merchant a merchant_manager looks after")
    _add_password_flags(p)
    _command(admins, "list", "list admin accounts", _admin_list)
    for action, help_text in (("disable", "refuse an admin's sign-ins and end their sessions"),
                              ("enable", "let a disabled admin sign in again")):
        p = _command(admins, action, help_text, _admin_status(action))
        p.add_argument("name")
    p = _command(admins, "reset", "new password, unlock, end sessions (prints a generated password once)",
                 _admin_reset)
    p.add_argument("name")
    totp_flags = p.add_mutually_exclusive_group()
    totp_flags.add_argument("--totp", dest="totp", action="store_true", default=None,
                            help="give the account a new TOTP secret")
    totp_flags.add_argument("--no-totp", dest="totp", action="store_false", help="remove the TOTP requirement")
    _add_password_flags(p)
