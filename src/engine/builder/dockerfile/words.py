"""Variable substitution in Dockerfile words, as docker's shell lexer does it.

``expand`` is the lexer's ProcessWord (quotes removed, escapes applied, ``$VAR`` and ``${VAR}``
forms replaced); ``expand_words`` is its ProcessWords (the same, then split at unquoted
whitespace, as ENV, LABEL, EXPOSE, VOLUME and the COPY/ADD sources are). The forms:

    $VAR  ${VAR}          the value, or "" when VAR is unset
    ${VAR:-word}          word when VAR is unset or empty      ${VAR-word}  when unset
    ${VAR:+word}          word when VAR is set and not empty   ${VAR+word}  when set
    ${VAR:?message}       an error when VAR is unset or empty  ${VAR?message} when unset

``word`` is itself expanded. Single quotes keep everything literal; inside double quotes the
escape character escapes only ``"``, ``$`` and itself. ``$`` before anything but a name, a
digit or a special parameter stays a ``$``.
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Go's unicode.IsSpace: the ASCII blanks, NEL, NBSP and the Unicode space separators
# (Python's str.isspace also counts \x1c-\x1f, Go's does not).
GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                     "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_MAX_DEPTH = 100


class ExpandError(InvalidArgument):
    """A word docker's lexer refuses: ``failed to process "${x": syntax error: missing '}'``."""


class _Words:
    """The words being built while a line is processed (ProcessWords' splitting)."""

    __slots__ = ("word", "words", "in_word")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACE:
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def done(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    __slots__ = ("text", "pos", "env", "escape", "depth")

    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        # Go's text/scanner skips a byte order mark at the start of its input
        self.text = text[1:] if text.startswith("\ufeff") else text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        if self.pos < len(self.text):
            self.pos += 1
            return self.text[self.pos - 1]
        return ""

    def process(self, stop: str = "") -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        text, escape = self.text, self.escape
        while self.pos < len(text):
            ch = text[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.done()
            if ch == "'":
                part = self.single_quote()
                words.add_raw(part)
            elif ch == '"':
                part = self.double_quote()
                words.add_raw(part)
            elif ch == "$":
                part = self.dollar()
                words.add_string(part)
            else:
                self.pos += 1
                if ch == escape:
                    if self.pos >= len(text):
                        break
                    ch = text[self.pos]
                    self.pos += 1
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                part = ch
            result.append(part)
        if stop:
            raise _Failure("unexpected end of statement while looking for matching %s" % stop)
        return "".join(result), words.done()

    def single_quote(self) -> str:
        self.pos += 1
        end = self.text.find("'", self.pos)
        if end < 0:
            raise _Failure("unexpected end of statement while looking for matching single-quote")
        part = self.text[self.pos:end]
        self.pos = end + 1
        return part

    def double_quote(self) -> str:
        self.pos += 1
        result: list[str] = []
        text, escape = self.text, self.escape
        while True:
            if self.pos >= len(text):
                raise _Failure("unexpected end of statement while looking for matching "
                               "double-quote")
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            self.pos += 1
            if ch == escape:
                if self.pos >= len(text):
                    continue
                if text[self.pos] in ('"', "$", escape):
                    ch = text[self.pos]
                    self.pos += 1
            result.append(ch)

    def name(self) -> str:
        text, start = self.text, self.pos
        if start < len(text):
            first = text[start]
            if first.isdecimal():
                end = start
                while end < len(text) and text[end].isdecimal():
                    end += 1
                self.pos = end
                return text[start:end]
            if first in _SPECIAL_PARAMS:
                self.pos += 1
                return first
        end = start
        while end < len(text) and (text[end].isalpha() or text[end].isdecimal()
                                   or text[end] == "_"):
            end += 1
        self.pos = end
        return text[start:end]

    def dollar(self) -> str:
        self.pos += 1
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.pos += 1
        nxt = self.peek()
        if nxt == "":
            raise _Failure("syntax error: missing '}'")
        if nxt in "{}:":
            raise _Failure("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?") and not colon:
            raise _Failure("missing ':' in substitution")
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Failure("substitutions nested deeper than %d" % _MAX_DEPTH)
        try:
            word, _ = self.process("}")
        except _Failure:
            if self.peek() == "":
                raise _Failure("syntax error: missing '}'") from None
            raise
        self.depth -= 1
        if ch not in ("-", "+", "?"):
            raise _Failure("unsupported modifier (%s) in substitution" % ch)
        value = self.env.get(name)
        unset = value is None or (colon and value == "")
        if ch == "-":
            return word if unset else (value or "")
        if ch == "+":
            return "" if unset else word
        if value is None:
            raise _Failure("%s: %s" % (name, word or "is not allowed to be unset"))
        if unset:
            raise _Failure("%s: %s" % (name, word or "is not allowed to be empty"))
        return value


class _Failure(Exception):
    pass


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def _go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote), for messages that show a word as docker does."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ch < " " or ch == "\x7f":
            out.append("\\x%02x" % ord(ch))
        elif ord(ch) < 0x10000:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append("\\U%08x" % ord(ch))
    out.append('"')
    return "".join(out)


def _run(word: str, env: Mapping[str, str], escape: str) -> tuple[str, list[str]]:
    if escape not in ("\\", "`"):
        raise InvalidArgument("invalid escape token %r does not match ` or \\" % escape)
    try:
        return _Lexer(word, env, escape).process()
    except _Failure as e:
        raise ExpandError("failed to process %s: %s" % (_go_quote(word), e)) from None


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with its variables replaced from ``env``, quotes removed and escapes applied
    (docker's ProcessWord). Raises ExpandError for a malformed substitution."""
    return _run(word, env, escape)[0]


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``word`` expanded as ``expand`` does, then split at whitespace outside quotes and
    outside the escapes (docker's ProcessWords)."""
    return _run(word, env, escape)[1]
