"""A child ``cardpos`` that must not outlive the process that started it (the demo's ledger and simulator).

The parent puts its pid in ``CARDPOS_EXIT_WITH_PARENT`` in the child's environment; the child, first thing in
``main``, asks Linux for SIGTERM when that parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes) and checks
that the parent is still there, in case it died while the child was starting. Done in the child rather than in a
``preexec_fn``, which is unsafe when the parent has threads. The kernel ties the signal to the parent *thread*
that started the child, so parents start such children from their main thread. Elsewhere than Linux this does
nothing, and the parent's own clean-up is all there is.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "CARDPOS_EXIT_WITH_PARENT"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def env_for_child() -> dict[str, str]:
    """The environment entry that makes a ``cardpos`` child end when this process does."""
    return {ENV: str(os.getpid())}


def follow_parent() -> None:
    """If started with ``ENV``: receive SIGTERM when that parent dies (and now, if it already has). The variable is
    removed so that processes this one starts do not take it as theirs."""
    wanted = os.environ.pop(ENV, "")
    if not wanted.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes  # only here: every other command starts without it

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(wanted):  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)
