""".dockerignore patterns, with docker's rules (a leaf module: the engine's builder and the CLI
both use it, so it imports nothing of pyrunc but pyrunc.errors).

    read_patterns(text)  the patterns of a .dockerignore: lines starting with ``#`` skipped,
                         whitespace trimmed, each cleaned as a path (``./a/../b`` -> ``b``,
                         a leading ``/`` dropped), ``!`` kept in front
    Matcher(patterns).excluded(path)
                         whether a path of the context (``/``-separated, relative) is left out:
                         the patterns are read in order and the last one that matches the path
                         or one of its parent directories decides; ``!pattern`` brings back.

Pattern syntax is Go's filepath.Match (``*`` and ``?`` not crossing ``/``, ``[a-z]`` classes,
``\\`` escaping) plus ``**``, any number of directories (none included).
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument


def _go_space_trim(s: str) -> str:
    return s.strip("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                   "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def clean(path: str) -> str:
    """Go's path.Clean: the shortest equivalent path (``.`` for an empty one)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def read_patterns(text: str | bytes) -> list[str]:
    """The patterns of a .dockerignore file, as the docker CLI reads them."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    patterns = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        pattern = _go_space_trim(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = _go_space_trim(pattern[1:])
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _check_syntax(pattern: str) -> None:
    """Go's filepath.Match refusals: an unclosed ``[``, an empty or reversed range, a trailing
    ``\\``."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            first = True
            while True:
                if i >= n:
                    raise ValueError
                if pattern[i] == "]" and not first:
                    i += 1
                    break
                first = False
                lo, i = _class_char(pattern, i)
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi < lo:
                        raise ValueError
            continue
        i += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise ValueError
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise ValueError
    return pattern[i], i + 1


# The tokens of a compiled pattern. Docker turns a pattern into a regular expression for Go's
# regexp, which runs in linear time; a backtracking engine would not (``*a*a*a*...b``), so the
# tokens are matched here by a set-of-states simulation: O(len(path) * len(pattern)).
_LITERAL, _ONE, _STAR, _DIRS, _REST, _CLASS = range(6)
# (kind, the literal character, a negated class, the class's ranges)
_Token = tuple[int, str, bool, tuple[tuple[str, str], ...]]


class _Pattern:
    __slots__ = ("text", "exclusion", "tokens")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.tokens = self._compile(text)

    @staticmethod
    def _compile(p: str) -> list[_Token]:
        tokens: list[_Token] = []
        i, n = 0, len(p)
        while i < n:
            ch = p[i]
            i += 1
            if ch == "*":
                if i < n and p[i] == "*":           # "**": any directories, "**/" included
                    i += 1
                    if i < n and p[i] == "/":
                        i += 1
                    tokens.append((_REST if i == n else _DIRS, "", False, ()))
                else:                               # "*": anything but "/"
                    tokens.append((_STAR, "", False, ()))
            elif ch == "?":
                tokens.append((_ONE, "", False, ()))
            elif ch == "\\":
                tokens.append((_LITERAL, p[i] if i < n else "\\", False, ()))
                i += 1
            elif ch == "[":
                negated = i < n and p[i] == "^"
                if negated:
                    i += 1
                ranges: list[tuple[str, str]] = []
                first = True
                while i < n and (p[i] != "]" or first):
                    first = False
                    lo, i = _class_char(p, i)
                    hi = lo
                    if i < n and p[i] == "-":
                        hi, i = _class_char(p, i + 1)
                    ranges.append((lo, hi))
                i += 1
                tokens.append((_CLASS, "", negated, tuple(ranges)))
            else:
                tokens.append((_LITERAL, ch, False, ()))
        return tokens

    def _closure(self, states: set[int]) -> set[int]:
        """The states reachable without reading a character (a star matching nothing)."""
        tokens, todo = self.tokens, list(states)
        while todo:
            s = todo.pop()
            if 0 <= s < len(tokens) and tokens[s][0] in (_STAR, _DIRS, _REST) \
                    and s + 1 not in states:
                states.add(s + 1)
                todo.append(s + 1)
        return states

    def match(self, path: str) -> bool:
        tokens, end = self.tokens, len(self.tokens)
        # a state is the index of the next token; ~index: inside "**/" before its "/"
        states = self._closure({0})
        for ch in path:
            nxt: set[int] = set()
            for s in states:
                if s < 0:
                    nxt.add(~s if ch == "/" else s)
                    continue
                if s == end:
                    continue
                kind, literal, negated, ranges = tokens[s]
                if kind == _LITERAL:
                    if ch == literal:
                        nxt.add(s + 1)
                elif kind == _ONE:
                    if ch != "/":
                        nxt.add(s + 1)
                elif kind == _STAR:
                    if ch != "/":
                        nxt.add(s)
                elif kind == _DIRS:
                    nxt.add(s if ch == "/" else ~s)
                elif kind == _REST:
                    nxt.add(s)
                else:
                    if any(lo <= ch <= hi for lo, hi in ranges) != negated:
                        nxt.add(s + 1)
            if not nxt:
                return False
            states = self._closure(nxt)
        return end in states


class Matcher:
    """The patterns of a .dockerignore, compiled. Raises InvalidArgument for a bad pattern."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            p = _go_space_trim(p)
            if not p:
                continue
            p = clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
                p = p[1:]
            try:
                _check_syntax(p)
                self.patterns.append(_Pattern(p, exclusion))
            except ValueError:
                raise InvalidArgument("syntax error in pattern: %r" % p) from None

    @property
    def exclusions(self) -> bool:
        """Whether any pattern is an exception (``!...``)."""
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out."""
        path = clean(path)
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                for i in range(len(parents)):
                    if pattern.match("/".join(parents[:i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception pattern could bring back something under an excluded
        ``directory`` (the docker CLI walks into such a directory instead of skipping it)."""
        prefix = clean(directory) + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)
