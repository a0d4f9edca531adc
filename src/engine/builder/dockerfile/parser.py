"""The Dockerfile parser: text -> instructions, as docker's classic builder reads a Dockerfile.

Two passes as in docker: the lines are joined and split per instruction (parser directives at
the top, comments, the escape character's line continuations, JSON or shell form, the
instruction's own way of splitting its arguments), then each instruction is checked (argument
counts, its flags, FROM's stage name, HEALTHCHECK's options, ONBUILD's trigger, only ARG before
the first FROM). Every refusal is a ParseError naming the line:
``dockerfile parse error line 3: unknown instruction: FOO``.

Variables are not expanded here: the builder expands the instructions that docker expands, with
the environment of the step, through ``words.expand``.
"""
from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass, field

from pyrunc.engine.builder.dockerfile.words import GO_SPACE, _go_quote
from pyrunc.errors import InvalidArgument

# bufio.Scanner's limit on one line, which docker's parser keeps
MAX_LINE = 65535

INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from",
                "healthcheck", "label", "maintainer", "onbuild", "run", "shell", "stopsignal",
                "user", "volume", "workdir")

# the instructions whose arguments docker's classic builder expands (each word alone with
# words.expand, in the step's environment and build args; ENV and LABEL keys and values, COPY
# and ADD also their --chown); EXPOSE expands each word to several (words.expand_words), FROM
# with the ARGs before the first FROM; RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD
# are left to the shell or to the build that runs the trigger
EXPANDED = frozenset({"add", "arg", "copy", "env", "label", "stopsignal", "user", "volume",
                      "workdir"})

# the flags each instruction takes (docker's classic builder: RUN takes none)
FLAGS: dict[str, tuple[str, ...]] = {
    "add": ("chown", "chmod"),
    "copy": ("chown", "from", "chmod"),
    "from": ("platform",),
    "healthcheck": ("interval", "timeout", "start-period", "retries"),
}

BUILDKIT_ONLY = ("the --%s option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/"
                 " to learn how to build images with BuildKit enabled")

_DIRECTIVE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*="
                        r"[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z", re.S)
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")
_ONBUILD_PREFIX = re.compile(r"[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.I)
_HEREDOC = re.compile(r"<<-?[\"']?[A-Za-z_]")
_KNOWN_DIRECTIVES = ("escape", "syntax")


class ParseError(InvalidArgument):
    """A Dockerfile docker's parser refuses; the message names the line, ``reason`` is the
    message without it."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line
        prefix = "dockerfile parse error line %d: " % line
        self.reason = message[len(prefix):] if message.startswith(prefix) else message


class _Refused(Exception):
    """A reason without its line; parse() adds the line number."""

    def __str__(self) -> str:
        # what the Dockerfile put in the reason is shown with its control characters escaped
        return "".join(c if c.isprintable() or c == " " else _go_quote(c)[1:-1]
                       for c in super().__str__())


@dataclass
class Instruction:
    """One instruction. ``args`` are split as docker's parser splits this instruction's
    arguments (see the module pyrunc.engine.builder.dockerfile); ``original`` is the line as
    written, continuations joined, as ``Step N/M : ...`` shows it."""

    cmd: str
    args: list[str] = field(default_factory=list)
    json: bool = False
    flags: list[str] = field(default_factory=list)
    original: str = ""
    line: int = 0
    end_line: int = 0
    trigger: Instruction | None = None      # ONBUILD's instruction

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The value of ``--name=value`` among the flags (the last one), or ``default``."""
        prefix = "--" + name + "="
        value = default
        for f in self.flags:
            if f.startswith(prefix):
                value = f[len(prefix):]
        return value

    @property
    def expression(self) -> str:
        """ONBUILD's trigger as docker stores it in the image (the line without ONBUILD)."""
        return self.trigger.original if self.trigger is not None else ""


@dataclass
class Dockerfile:
    directives: dict[str, str]
    instructions: list[Instruction]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)


def _go_trim_left(s: str) -> str:
    i = 0
    while i < len(s) and s[i] in GO_SPACE:
        i += 1
    return s[i:]


def _go_trim(s: str) -> str:
    s = _go_trim_left(s)
    j = len(s)
    while j and s[j - 1] in GO_SPACE:
        j -= 1
    return s[:j]


def _continuation(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(r"([^%s])%s[ \t]*\Z|\A%s[ \t]*\Z" % (e, e, e), re.S)


_CONTINUATIONS = {"\\": _continuation("\\"), "`": _continuation("`")}


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """(the line without its trailing escape character, whether the instruction ends here)."""
    m = _CONTINUATIONS[escape].search(line)
    if m is None:
        return line, True
    return line[:m.start()] + (m.group(1) or ""), False


# -- splitting the arguments, per instruction (docker's line parsers) ---------------------------

def _words(rest: str, escape: str) -> list[str]:
    """Words split at whitespace outside quotes; quotes and escapes kept (parseWords)."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_word = in_quote = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not in_quote:
            if ch in GO_SPACE:
                i += 1
                continue
            in_word = True
        if in_word:
            if ch in GO_SPACE:
                in_word = False
                if blank_ok or word:
                    words.append("".join(word))
                word, blank_ok = [], False
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok, in_word, in_quote = ch, True, False, True
            if ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        # in a quote
        if ch == quote:
            in_word, in_quote = True, False
        if ch == escape and quote != "'":
            if i + 1 == n:
                in_word, in_quote = True, False
                i += 1
                continue
            i += 1
            word.append(ch)
            ch = rest[i]
        word.append(ch)
        i += 1
    if (in_word or in_quote) and (blank_ok or word):
        words.append("".join(word))
    return words


def _split_ws(rest: str) -> list[str]:
    return _WHITESPACE.split(rest) if rest else []


def _not_constant(name: str) -> object:
    raise ValueError(name)


_DECODER = _json.JSONDecoder(parse_constant=_not_constant)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array at the start of ``rest``, or None when it is not one."""
    rest = _go_trim_left(rest)
    if not rest.startswith("["):
        return None
    try:
        value, _ = _DECODER.raw_decode(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _Refused("when using JSON array syntax, arrays must be comprised of strings only")
    # Go's decoder turns a lone surrogate escape into U+FFFD (Python's keeps the surrogate)
    return [_LONE_SURROGATE.sub("\ufffd", v) for v in value]


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    if not rest:
        return [], False
    value = _json_array(rest)
    if value is not None:
        return value, True
    return [rest], False


def _maybe_json_list(rest: str) -> tuple[list[str], bool]:
    value = _json_array(rest)
    if value is not None:
        return value, True
    return _split_ws(rest), False


def _name_values(rest: str, key: str, escape: str) -> list[str]:
    words = _words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _Refused("%s must have two arguments" % key)
        return parts
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise _Refused("Syntax error - can't find = in %s. Must be of the form: name=value"
                           % _go_quote(word))
        out.extend(word.split("=", 1))
    return out


def _health(rest: str) -> tuple[list[str], bool]:
    sep = 0
    while sep < len(rest) and rest[sep] not in GO_SPACE:
        sep += 1
    if sep == 0:
        return [], False
    nxt = sep
    while nxt < len(rest) and rest[nxt] in GO_SPACE:
        nxt += 1
    args, is_json = _maybe_json(rest[nxt:])
    return [rest[:sep]] + args, is_json


def _builder_flags(line: str) -> tuple[str, list[str]]:
    """(the arguments after the leading ``--flag`` words, those flags) (extractBuilderFlags)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = in_quote = False
    pos, n = 0, len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if not in_word and not in_quote:
            if pos == n:
                break
            if ch in GO_SPACE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            in_word = True
        if pos == n:
            text = "".join(word)
            if text != "--" and (blank_ok or text):
                words.append(text)
            break
        if in_word:
            if ch in GO_SPACE:
                in_word = False
                text = "".join(word)
                if text == "--":
                    return line[pos:], words
                if blank_ok or text:
                    words.append(text)
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, in_word, in_quote = ch, True, False, True
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        if ch == quote:
            in_word, in_quote = True, False
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                in_word, in_quote = True, False
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    return "", words


def _split_line(line: str, escape: str) -> Instruction:
    """One logical line -> an Instruction with docker's split of its arguments (unchecked)."""
    trimmed = _go_trim(line)
    parts = _WHITESPACE.split(trimmed, maxsplit=1)
    cmd = parts[0].lower()
    rest, flags = "", list[str]()
    if len(parts) == 2:
        rest, flags = _builder_flags(parts[1])
    rest = _go_trim(rest)
    ins = Instruction(cmd=cmd, flags=flags, original=trimmed)
    if cmd in ("add", "copy", "volume"):
        ins.args, ins.json = _maybe_json_list(rest)
    elif cmd in ("cmd", "entrypoint", "run", "shell"):
        ins.args, ins.json = _maybe_json(rest)
    elif cmd in ("env", "label"):
        ins.args = _name_values(rest, cmd.upper(), escape)
    elif cmd == "arg":
        ins.args = _words(rest, escape)
    elif cmd in ("expose", "from"):
        ins.args = _split_ws(rest)
    elif cmd in ("maintainer", "stopsignal", "user", "workdir"):
        ins.args = [rest] if rest else []
    elif cmd == "healthcheck":
        ins.args, ins.json = _health(rest)
    elif cmd == "onbuild":
        if rest:
            ins.trigger = _split_line(rest, escape)
            ins.trigger.original = _ONBUILD_PREFIX.sub("", line, count=1)
            ins.args = [ins.trigger.cmd] + ins.trigger.args
    return ins


# -- checking each instruction (docker's instructions.Parse) ------------------------------------

def _check_flags(ins: Instruction, allowed: tuple[str, ...],
                 repeatable: tuple[str, ...] = ()) -> None:
    """BFlags.Parse: known names only, once each (but ``repeatable``), with a value."""
    seen = set()
    for arg in ins.flags:
        if not arg.startswith("--"):
            raise _Refused("Arg should start with -- : %s" % arg)
        if arg == "--":
            return
        name, eq, _ = arg[2:].partition("=")
        if name not in allowed:
            raise _Refused("Unknown flag: %s" % name)
        if name in seen and name not in repeatable:
            raise _Refused("Duplicate flag specified: %s" % name)
        seen.add(name)
        if not eq:
            raise _Refused("Missing a value on flag: %s" % name)


_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 1000000,
          "s": 1000000000, "m": 60000000000, "h": 3600000000000}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration (``1h30m``, ``1.5s``, ``300ms``), in nanoseconds."""
    orig, s, sign = text, text, 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise InvalidArgument("time: invalid duration %s" % _go_quote(orig))
    total = 0
    while s:
        m = _DURATION_PART.match(s)
        assert m is not None
        number, unit = m.group(1), m.group(2)
        if number in ("", "."):
            raise InvalidArgument("time: invalid duration %s" % _go_quote(orig))
        if not unit:
            raise InvalidArgument("time: missing unit in duration %s" % _go_quote(orig))
        if unit not in _UNITS:
            raise InvalidArgument("time: unknown unit %s in duration %s"
                                  % (_go_quote(unit), _go_quote(orig)))
        whole, _, fraction = number.partition(".")
        whole, fraction = whole.lstrip("0"), fraction[:18]     # Go's digits stop there too
        if len(whole) > 19:
            raise InvalidArgument("time: invalid duration %s" % _go_quote(orig))
        scale = _UNITS[unit]
        # as Go computes it: the integer part exactly, the fraction through a float64
        total += int(whole or 0) * scale
        if fraction:
            total += int(float(int(fraction)) * (scale / 10 ** len(fraction)))
        if total > 2 ** 63:
            raise InvalidArgument("time: invalid duration %s" % _go_quote(orig))
        s = s[m.end():]
    if total == 2 ** 63 and sign > 0:
        raise InvalidArgument("time: invalid duration %s" % _go_quote(orig))
    return sign * total


def _interval(ins: Instruction, name: str) -> None:
    value = ins.flag(name)
    if not value:
        return
    try:
        ns = parse_duration(value)
    except InvalidArgument as e:
        raise _Refused(str(e)) from None
    if ns < 1000000:
        raise _Refused('Interval "%s" cannot be less than 1ms' % name)


def _check_healthcheck(ins: Instruction) -> None:
    if not ins.args:
        raise _Refused("HEALTHCHECK requires at least one argument")
    typ = ins.args[0].upper()
    if typ == "NONE":
        if len(ins.args) > 1:
            raise _Refused("HEALTHCHECK NONE takes no arguments")
        return
    _check_flags(ins, FLAGS["healthcheck"])
    if typ != "CMD":
        raise _Refused("Unknown type %s in HEALTHCHECK (try CMD)" % _go_quote(typ))
    if len(ins.args) == 1:
        raise _Refused("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period"):
        _interval(ins, name)
    retries = ins.flag("retries")
    if retries:
        if not re.fullmatch(r"[+-]?[0-9]+", retries, re.A):
            raise _Refused('strconv.ParseInt: parsing %s: invalid syntax' % _go_quote(retries))
        n = int(retries) if len(retries) < 20 else 2 ** 31
        if not -2 ** 31 <= n < 2 ** 31:
            raise _Refused('strconv.ParseInt: parsing %s: value out of range'
                           % _go_quote(retries))
        if n < 1:
            raise _Refused("--retries must be at least 1 (not %d)" % n)


def _check(ins: Instruction) -> None:
    """instructions.ParseInstruction's checks, in docker's order, with docker's messages."""
    cmd, args = ins.cmd, ins.args
    up = cmd.upper()
    if cmd not in INSTRUCTIONS:
        raise _Refused("unknown instruction: %s" % up)
    if cmd == "healthcheck":
        _check_healthcheck(ins)
    elif cmd in ("env", "label"):
        _check_flags(ins, ())
        if not args:
            raise _Refused("%s requires at least one argument" % up)
        if any(not args[i] for i in range(0, len(args), 2)):
            raise _Refused("%s names can not be blank" % up)
    elif cmd in ("add", "copy"):
        if len(args) < 2:
            raise _Refused("%s requires at least two arguments, but only one was provided. "
                           "Destination could not be determined" % up)
        _check_flags(ins, FLAGS[cmd])
    elif cmd in ("maintainer", "workdir", "user", "stopsignal"):
        if len(args) != 1:
            raise _Refused("%s requires exactly one argument" % up)
        if cmd != "stopsignal":         # docker reads no flags for STOPSIGNAL: any are ignored
            _check_flags(ins, ())
    elif cmd == "from":
        if len(args) == 3 and args[1].lower() == "as":
            if not _STAGE_NAME.match(args[2].lower()):
                raise _Refused("invalid name for build stage: %s, name can't start with a "
                               "number or contain symbols" % _go_quote(args[2]))
        elif len(args) != 1:
            raise _Refused("FROM requires either one or three arguments")
        _check_flags(ins, FLAGS["from"])
    elif cmd == "onbuild":
        if not args:
            raise _Refused("ONBUILD requires at least one argument")
        _check_flags(ins, ())
        trigger = args[0].upper()
        if trigger == "ONBUILD":
            raise _Refused("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise _Refused("%s isn't allowed as an ONBUILD trigger" % trigger)
    elif cmd == "run":
        # docker's parser knows RUN --mount (a BuildKit feature); its classic builder refuses it
        # when the step runs, with this message: refused here before any step runs
        _check_flags(ins, ("mount",), repeatable=("mount",))
        if ins.flags:
            raise _Refused(BUILDKIT_ONLY % "mount")
    elif cmd in ("cmd", "entrypoint"):
        _check_flags(ins, ())
    elif cmd == "expose":
        if not args:
            raise _Refused("EXPOSE requires at least one argument")
        _check_flags(ins, ())
    elif cmd == "volume":
        if not args:
            raise _Refused("VOLUME requires at least one argument")
        _check_flags(ins, ())
        if any(not _go_trim(v) for v in args):
            raise _Refused("VOLUME specified can not be an empty string")
    elif cmd == "arg":                  # docker reads no flags for ARG: any are ignored
        if not args:
            raise _Refused("ARG requires at least one argument")
        if any(a.startswith("=") for a in args):
            raise _Refused("ARG names can not be blank")
    elif cmd == "shell":
        _check_flags(ins, ())
        if not args:
            raise _Refused("SHELL requires at least one argument")
        if not ins.json:
            raise _Refused("SHELL requires the arguments to be in JSON form")


# -- the file -----------------------------------------------------------------------------------

def _lines(text: str | bytes) -> list[str]:
    """The physical lines as bufio.Scanner's ScanLines gives them (\\n, a \\r before it dropped)."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = text.count(b"\n", 0, e.start) + 1
            raise ParseError("dockerfile parse error line %d: invalid UTF-8 (byte 0x%02x)"
                             % (bad, text[e.start]), bad) from None
    else:
        decoded = text
    lines = decoded.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE // 4 and len(line.encode("utf-8", "surrogatepass")) > MAX_LINE:
            raise ParseError("dockerfile parse error line %d: dockerfile line greater than max "
                             "allowed size of %d" % (i + 1, MAX_LINE), i + 1)
        if line.endswith("\r"):
            lines[i] = line[:-1]
    return lines


def _check_nul(ins: Instruction) -> None:
    """A NUL can reach no command line, environment or path: refused here, not when it runs."""
    if any("\x00" in a for a in ins.args) or any("\x00" in f for f in ins.flags):
        raise _Refused("NUL character in the arguments")


def _is_comment(line: str) -> bool:
    return _go_trim_left(line).startswith("#")


def parse(text: str | bytes) -> Dockerfile:
    """Parse a whole Dockerfile. Raises ParseError (an InvalidArgument) naming the line."""
    lines = _lines(text)
    directives: dict[str, str] = {}
    escape = "\\"
    looking = True                      # still reading parser directives
    warnings: list[str] = []
    instructions: list[Instruction] = []
    i = 0
    while i < len(lines):
        raw = _go_trim_left(lines[i])
        i += 1
        if looking:
            m = _DIRECTIVE.match(raw)
            key = m.group(1).lower() if m else ""
            if key not in _KNOWN_DIRECTIVES:
                looking = False
            else:
                assert m is not None
                if key in directives:
                    raise ParseError("dockerfile parse error line %d: only one %s parser "
                                     "directive can be used" % (i, key), i)
                directives[key] = m.group(2)
                if key == "escape":
                    if m.group(2) not in ("\\", "`"):
                        raise ParseError("dockerfile parse error line %d: invalid escape token "
                                         "'%s' does not match ` or \\" % (i, m.group(2)), i)
                    escape = m.group(2)
        if raw.startswith("#"):
            raw = ""
        start = i
        line, end = _trim_continuation(raw, escape)
        if end and not line:
            continue
        parts = [line]
        empty_continuation = False
        while not end and i < len(lines):
            nxt = lines[i]
            i += 1
            if _is_comment(nxt):
                continue
            if not _go_trim_left(nxt):
                empty_continuation = True
                continue
            piece, end = _trim_continuation(nxt, escape)
            parts.append(piece)
        line = "".join(parts)
        if empty_continuation:
            warnings.append("[WARNING]: Empty continuation line found in:\n    " + line)
        try:
            ins = _split_line(line, escape)
        except _Refused as e:
            raise ParseError("dockerfile parse error line %d: %s" % (start, e), start) from None
        ins.line, ins.end_line = start, i
        if ins.trigger is not None:
            ins.trigger.line, ins.trigger.end_line = start, i
        instructions.append(ins)
    if warnings:
        warnings.append("[WARNING]: Empty continuation lines will become errors in a future "
                        "release.")
    if not instructions:
        raise ParseError("dockerfile parse error line %d: file with no instructions"
                         % len(lines), len(lines))
    seen_from = False
    for n, ins in enumerate(instructions):
        try:
            try:
                _check(ins)
            except _Refused as e:
                if str(e).startswith("unknown instruction") and n and any(
                        _HEREDOC.search(a) for a in instructions[n - 1].args):
                    raise _Refused("%s (a heredoc on line %d? heredocs are a BuildKit feature, "
                                   "not read by this builder)" % (e, instructions[n - 1].line)
                                   ) from None
                raise
            _check_nul(ins)
            if ins.cmd == "from":
                seen_from = True
            elif not seen_from and ins.cmd != "arg":
                raise _Refused("no build stage in current context")
        except _Refused as e:
            raise ParseError("dockerfile parse error line %d: %s" % (ins.line, e),
                             ins.line) from None
    return Dockerfile(directives=directives, instructions=instructions, escape=escape,
                      warnings=warnings)


def parse_instruction(line: str, escape: str = "\\") -> Instruction:
    """One instruction alone (``docker commit --change``, an ONBUILD trigger run in a child
    build), checked as in a Dockerfile but without needing a FROM before it."""
    if "\n" in line or "\r" in line:
        raise ParseError("dockerfile parse error line 1: %s: one instruction expected, without "
                         "line breaks" % _go_quote(line), 1)
    if escape not in ("\\", "`"):
        raise InvalidArgument("invalid escape token '%s' does not match ` or \\" % escape)
    line, _ = _trim_continuation(_go_trim_left(line), escape)
    if not line or line.startswith("#"):
        raise ParseError("dockerfile parse error line 1: file with no instructions", 1)
    try:
        ins = _split_line(line, escape)
        ins.line = ins.end_line = 1
        _check(ins)
        _check_nul(ins)
    except _Refused as e:
        raise ParseError("dockerfile parse error line 1: %s" % e, 1) from None
    return ins
