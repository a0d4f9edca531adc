"""Signal names and numbers as runc's ``kill`` accepts them: KILL, SIGKILL, 9, RTMIN+3.

Built on ``_signal``, the C core of the ``signal`` module: ``signal`` imports enum (1 ms) to
make ``signal.Signals``, which the runtime's commands do without.
"""
from __future__ import annotations

import _signal

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NUMBERS = {name: number for name, number in vars(_signal).items()
           if name.isupper() and name.startswith("SIG") and not name.startswith("SIG_")}
"""Signal name -> number: the names of ``signal.Signals``, aliases (SIGIOT, SIGCLD) included."""


def parse_signal(text: Any) -> Any:
    if text.isascii() and text.isdigit():
        num = int(text)
        if 0 < num < _signal.SIGRTMAX + 1:
            return num
        raise InvalidArgument("unknown signal %r" % text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base in ("SIGRTMIN", "SIGRTMAX"):
        if name.startswith(base) and name != base:
            sign, offset = name[len(base)], name[len(base) + 1:]
            if sign in "+-" and offset.isdigit():
                num = NUMBERS[base] + (int(offset) if sign == "+" else -int(offset))
                if _signal.SIGRTMIN <= num <= _signal.SIGRTMAX:
                    return num
            raise InvalidArgument("unknown signal %r" % text)
    if name not in NUMBERS:
        raise InvalidArgument("unknown signal %r" % text)
    return NUMBERS[name]
