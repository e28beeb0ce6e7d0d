"""Scripted scenarios: a text file of timed console commands.

One step per line; ``#`` starts a comment; blank lines are skipped::

    wait 1.5            # advance the script clock by 1.5 s
    at 10 tap 3         # run 'tap 3' 10 s after the script started
    tap 1               # run now (right after the previous step)

``at`` times are seconds from the start of the script and may not go backwards. Any console command is allowed
(see hwsim.console); ``quit`` ends the script early.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import SimulatorError


@dataclass(frozen=True, slots=True)
class Step:
    at: float  # seconds after the script starts
    command: str
    line_no: int


def parse_script(text: str, source: str = "script") -> list[Step]:
    steps: list[Step] = []
    clock = 0.0
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        try:
            if words[0] == "wait":
                if len(words) != 2:
                    raise ValueError
                seconds = float(words[1])
                if seconds < 0:
                    raise ValueError
                clock += seconds
                continue
            if words[0] == "at":
                at = float(words[1])
                if at < clock or len(words) < 3:
                    raise ValueError
                clock = at
                words = words[2:]
        except (ValueError, IndexError):
            raise SimulatorError(f"{source} line {no}: cannot read {raw.strip()!r} "
                                 f"(expected 'wait S', 'at S COMMAND' with S not going backwards, or COMMAND)"
                                 ) from None
        steps.append(Step(clock, " ".join(words), no))
    return steps


def load_script(path: Path) -> list[Step]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"cannot read script {path}: {exc.strerror}", orig=exc) from exc
    return parse_script(text, str(path))
