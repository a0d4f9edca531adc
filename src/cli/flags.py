"""docker's command framework in small: commands with pflag-style flags and cobra's help layout.

A ``Command`` has a usage line, a one-line description, aliases, flags and either subcommands
(a management command such as ``image``) or a ``run`` function. Flags parse like pflag:
``--flag=value``, ``--flag value``, combined short booleans ``-it``, ``-p80`` / ``-p 80``,
repeated list flags, ``--`` ends the flags. Errors are ``UsageError`` (exit 125, as docker's
flag errors) or ``ArgsError`` (docker's argument-count messages, exit 1).
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

PROG = "pydocker"
HELP_WIDTH = 79          # docker wraps flag help at the terminal's width - 1, 80 when none


class UsageError(Exception):
    """A flag the command does not know or a value it cannot parse (docker exits 125)."""

    exit_code = 125
    hint_word = "Run"


class ArgsError(UsageError):
    """The wrong number of arguments (docker exits 1)."""

    exit_code = 1


class CommandError(Exception):
    """A failure a command reports in docker's words, with docker's exit code (the
    exceptions main() reports live here, so that no error path imports the client)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DaemonError(Exception):
    """The daemon answered with an error status; ``str()`` is its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    """Nothing answers at the daemon's address."""

    def __init__(self, host: str) -> None:
        super().__init__("Cannot connect to the Docker daemon at %s. Is the docker daemon "
                         "running?" % host)
        self.host = host


class ProtocolError(Exception):
    """The daemon's answer is not HTTP/1.x as the client reads it (docker's "error during
    connect")."""


class TransportError(Exception):
    """A request that failed below HTTP (a TLS handshake or read), in docker's words ("error
    during connect: Get "URL": REASON"), exit 1."""


class TemplateError(Exception):
    """A template that does not parse or does not apply to the data."""


class Flag:
    """One flag: ``type_name`` is what help shows after the name ("" for booleans); ``multi``
    flags collect every occurrence in a list."""

    def __init__(self, name: str, short: str = "", type_name: str = "", help: str = "",
                 default: Any = None, multi: bool = False, hidden: bool = False,
                 shown_default: str = "") -> None:
        self.name = name
        self.short = short
        self.type_name = type_name
        self.help = help
        self.multi = multi
        self.hidden = hidden
        self.shown_default = shown_default    # what help says of a list/map flag's default
        if default is None:
            default = [] if multi else (False if type_name == "" else
                                        0 if type_name in ("int", "uint16", "int64") else "")
        self.default = default

    @property
    def is_bool(self) -> bool:
        return self.type_name == ""

    def label(self) -> str:
        return ("-%s, --%s" % (self.short, self.name)) if self.short else "--" + self.name

    def convert(self, raw: str) -> Any:
        if self.is_bool:
            low = raw.lower() if raw in ("true", "false", "TRUE", "FALSE", "True", "False") \
                else raw
            if low in ("1", "t", "T", "true"):
                return True
            if low in ("0", "f", "F", "false"):
                return False
            raise UsageError('invalid argument "%s" for "%s" flag: strconv.ParseBool: parsing '
                             '"%s": invalid syntax' % (raw, self.label(), raw))
        if self.type_name in ("int", "uint16", "int64"):
            try:
                value = int(raw, 10)
            except ValueError:
                raise UsageError('invalid argument "%s" for "%s" flag: strconv.ParseInt: '
                                 'parsing "%s": invalid syntax' % (raw, self.label(), raw)) \
                    from None
            if self.type_name == "uint16" and not 0 <= value <= 65535:
                raise UsageError('invalid argument "%s" for "%s" flag: strconv.ParseUint: '
                                 'parsing "%s": value out of range' % (raw, self.label(), raw))
            return value
        return raw

    def default_text(self) -> str:
        d = self.default
        if self.multi:
            return self.shown_default
        if self.is_bool:
            return "true" if d else ""
        if self.type_name in ("int", "uint16", "int64"):
            return str(d) if d else ""
        return '"%s"' % d if d else ""


class Options(dict):
    """Parsed flag values by flag name (``opts["no-trunc"]``), plus ``changed``: the names set
    on the command line."""

    changed: set[str]


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(" ", 0, i), s.rfind("\t", 0, i), s.rfind("\n", 0, i))
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(indent: int, width: int, s: str) -> str:
    """pflag's wrapping of flag help: lines up to ``width``, continuation lines indented."""
    avail = width - indent
    out = ""
    if avail < 24:
        indent = 16
        avail = width - indent
        out += "\n" + " " * indent
    if avail < 24:
        return s.replace("\n", out)
    slop = 5
    avail -= slop
    line, s = _wrap_n(avail, slop, s)
    out += line.replace("\n", "\n" + " " * indent)
    while s:
        line, s = _wrap_n(avail, slop, s)
        out += "\n" + " " * indent + line.replace("\n", "\n" + " " * indent)
    return out


def flag_usages(flags: Sequence[Flag], width: int = HELP_WIDTH) -> str:
    """The Options block: flags sorted by name, descriptions aligned and wrapped as pflag's."""
    lines = []
    maxlen = 0
    for f in sorted((f for f in flags if not f.hidden), key=lambda f: f.name):
        line = ("  -%s, --%s" % (f.short, f.name)) if f.short else "      --" + f.name
        if f.type_name:
            line += " " + f.type_name
        line += "\x00"
        maxlen = max(maxlen, len(line))
        line += f.help
        d = f.default_text()
        if d:
            line += " (default %s)" % d
        lines.append(line)
    out = []
    for line in lines:
        head, _, text = line.partition("\x00")
        out.append(head + " " + " " * (maxlen - len(head)) + " "
                   + _wrap(maxlen + 2, width, text))
    return "\n".join(out) + "\n"


def help_width() -> int:
    try:
        return os.get_terminal_size(0).columns - 1
    except OSError:
        return HELP_WIDTH


class Command:
    """A command or a management command (one with ``subcommands``)."""

    def __init__(self, name: str, use: str, short: str, run: Callable[..., int | None] | None = None,
                 flags: Sequence[Flag] = (), aliases: Sequence[str] = (), args: str = "any",
                 nargs: int = 0, interspersed: bool = True,
                 subcommands: Sequence[Command] = ()) -> None:
        self.name = name
        self.use = use
        self.short = short
        self.run = run
        self.flags = list(flags)
        self.aliases = list(aliases)       # full alias paths: "pydocker ps"
        self.args = args                   # "any", "none", "min", "exact", "range"
        self.nargs = nargs
        self.interspersed = interspersed
        self.subcommands = list(subcommands)
        self.path = PROG + " " + name      # the path the user typed; set by the dispatcher

    # -- parsing --------------------------------------------------------------------------
    def parse(self, argv: Sequence[str]) -> tuple[Options, list[str]]:
        long = {f.name: f for f in self.flags}
        long["help"] = HELP_FLAG
        short = {f.short: f for f in self.flags if f.short}
        opts = Options({f.name: (list(f.default) if f.multi else f.default) for f in self.flags})
        opts.changed = set()
        opts["help"] = False
        args: list[str] = []

        def put(f: Flag, raw: str | bool) -> None:
            value = raw if isinstance(raw, bool) else f.convert(raw)
            if f.multi:
                if f.name not in opts.changed:
                    opts[f.name] = []
                opts[f.name].append(value)
            else:
                opts[f.name] = value
            opts.changed.add(f.name)

        i = 0
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--":
                args.extend(argv[i:])
                break
            if a.startswith("--"):
                name, eq, value = a[2:].partition("=")
                f = long.get(name)
                if f is None:
                    raise UsageError("unknown flag: --%s" % name)
                if f.is_bool:
                    put(f, value if eq else True)
                elif eq:
                    put(f, value)
                elif i < len(argv):
                    put(f, argv[i])
                    i += 1
                else:
                    raise UsageError("flag needs an argument: --%s" % name)
            elif a.startswith("-") and len(a) > 1:
                s = a[1:]
                j = 0
                while j < len(s):
                    c = s[j]
                    f = short.get(c) or (HELP_FLAG if c == "h" else None)
                    if f is None:
                        raise UsageError("unknown shorthand flag: '%s' in -%s" % (c, s))
                    rest = s[j + 1:]
                    if f.is_bool:
                        if rest.startswith("="):
                            put(f, rest[1:])
                            break
                        put(f, True)
                        j += 1
                        continue
                    if rest:
                        put(f, rest[1:] if rest.startswith("=") else rest)
                    elif i < len(argv):
                        put(f, argv[i])
                        i += 1
                    else:
                        raise UsageError("flag needs an argument: '%s' in -%s" % (c, c))
                    break
            else:
                args.append(a)
                if not self.interspersed:
                    args.extend(argv[i:])
                    break
        return opts, args

    def check_args(self, args: list[str]) -> None:
        n, k = len(args), self.nargs
        if self.args == "none" and n:
            raise ArgsError("%s: '%s' accepts no arguments" % (PROG, self.path))
        if self.args == "min" and n < k:
            e = ArgsError("%s: '%s' requires at least %d argument%s"
                          % (PROG, self.path, k, "" if k == 1 else "s"))
            e.hint_word = "See"
            raise e
        if self.args == "exact" and n != k:
            raise ArgsError("%s: '%s' requires %d argument%s"
                            % (PROG, self.path, k, "" if k == 1 else "s"))
        if self.args == "max" and n > k:
            raise ArgsError("%s: '%s' requires at most %d argument%s"
                            % (PROG, self.path, k, "" if k == 1 else "s"))

    # -- help ------------------------------------------------------------------------------
    def usage_line(self) -> str:
        if self.subcommands:
            return "Usage:  %s COMMAND" % self.path
        return "Usage:  %s %s" % (self.path, self.use) if self.use else "Usage:  " + self.path

    def help_text(self) -> str:
        out = [self.usage_line(), "", self.short, ""]
        if self.aliases:
            out += ["Aliases:", "  " + ", ".join(self.aliases), ""]
        if self.subcommands:
            out.append("Commands:")
            for sub in sorted(self.subcommands, key=lambda c: c.name):
                out.append("  %-11s %s" % (sub.name, sub.short))
            out.append("")
        text = "\n".join(out) + "\n"
        visible = [f for f in self.flags if not f.hidden]
        if any(f.short == "h" for f in visible):
            visible.append(HELP_FLAG)
        if visible:
            text += "Options:\n" + flag_usages(visible, help_width())
        if self.subcommands:
            if visible:
                text += "\n"
            text += "Run '%s COMMAND --help' for more information on a command.\n" % self.path
        return text

    def usage_error(self, err: UsageError) -> str:
        return "%s\n\n%s\n\n%s '%s --help' for more information\n" % (
            err, self.usage_line(), err.hint_word, self.path)


HELP_FLAG = Flag("help", "", "", "Print usage")


def print_err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()
