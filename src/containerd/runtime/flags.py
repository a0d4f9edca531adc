"""A small command-line parser in runc's (urfave/cli) style, lean enough for the hot path.

``pyrunc create/start/state/delete`` run many times per container in an engine, so the command
avoids argparse and its imports. Each command declares its flags; parsing accepts
``--flag value``, ``--flag=value``, ``-f value`` and boolean flags, in any order before or
between positional arguments, and ``--`` to end flags.
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Flag:
    __slots__ = ("names", "dest", "kind", "default", "help", "metavar")

    def __init__(self, names: Any, kind: Any = str, default: Any = None, help: str = "",
                 dest: Any = None, metavar: str = "value") -> None:
        self.names = names.split(",") if isinstance(names, str) else list(names)
        self.dest = dest or self.names[0].lstrip("-").replace("-", "_")
        self.kind = kind                  # str, int, bool, or list (repeatable)
        self.default = default if default is not None else ([] if kind is list else
                                                            False if kind is bool else None)
        self.help = help
        self.metavar = metavar

    def spelling(self) -> Any:
        opts = ", ".join(("-" if len(n) == 1 else "--") + n for n in self.names)
        return opts if self.kind is bool else "%s %s" % (opts, self.metavar)


def parse(flags: Any, argv: Any, where: Any, interleave: bool = True) -> tuple[Any, ...]:
    """Parse ``argv`` against ``flags``; returns (values dict, positional list).

    With ``interleave`` false (runc's exec/run style for the command after the id), parsing stops
    at the first positional argument.
    """
    by_name = {}
    for f in flags:
        for n in f.names:
            by_name[n] = f
    values = {f.dest: (list(f.default) if f.kind is list else f.default) for f in flags}
    positional = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if not interleave:
                positional.extend(argv[i:])
                break
            continue
        name, eq, inline = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise InvalidArgument("%s: flag provided but not defined: %s" % (where, arg))
        if flag.kind is bool:
            if eq:
                if inline not in ("true", "false"):
                    raise InvalidArgument("%s: invalid boolean value %r for %s"
                                          % (where, inline, arg))
                values[flag.dest] = inline == "true"
            else:
                values[flag.dest] = True
            continue
        if eq:
            raw = inline
        else:
            if i >= len(argv):
                raise InvalidArgument("%s: flag needs an argument: %s" % (where, arg))
            raw = argv[i]
            i += 1
        if flag.kind is int:
            try:
                raw = int(raw, 0)
            except ValueError:
                raise InvalidArgument("%s: invalid value %r for flag %s: not a number"
                                      % (where, raw, arg)) from None
        if flag.kind is list:
            values[flag.dest].append(raw)
        else:
            values[flag.dest] = raw
    return values, positional
