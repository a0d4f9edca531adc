"""The subset of Go's text/template that docker's --format users write.

Text and actions: ``{{.Field.Sub}}``, ``{{json .}}``, ``{{join .List ","}}``, ``{{upper .X}}``,
``{{lower .X}}``, ``{{title .X}}``, ``{{truncate .X 5}}``, ``{{printf "%s-%d" .A .B}}``,
``{{index .Map "key"}}``, ``{{len .X}}``, pipes (``{{.Names | upper}}``), ``{{range .X}}``,
``{{if .X}}...{{else}}...{{end}}``, ``{{/* comments */}}`` and ``{{- trim -}}`` markers.
Values print as Go prints them: lists "[a b]", maps "map[k:v]", a map's missing key
"<no value>". With ``GoTypes`` (what docker formats: its context structs, inspect's raw maps) a
field the object lacks fails as Go's does: ``template: :1:2: executing "" at <.Nope>: can't
evaluate field Nope in type *formatter.ContainerContext``.
"""
from __future__ import annotations

from .flags import TemplateError
from .jsonio import loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


# The scanners below are hand-written (``re`` costs a short command milliseconds of imports).
# tests/cli/test_parsers.py proves them equal to these expressions:
#   actions  \{\{(-\s)?(.*?)(\s-)?\}\}  (re.S), each match's (start, end, groups)
#   tokens   \s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||\(|\)|[^\s|()]+)  (findall)


def actions(text: str) -> list[tuple[int, int, bool, str, bool]]:
    """The ``{{...}}`` of ``text``: (start, end, trim-left, body, trim-right) each."""
    out: list[tuple[int, int, bool, str, bool]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return out
        body = start + 2
        left = text[body:body + 1] == "-" and text[body + 1:body + 2].isspace()
        if left:
            body += 2
        close = text.find("}}", body)
        if close < 0:
            return out
        right = close - 2 >= body and text[close - 1] == "-" and text[close - 2].isspace()
        out.append((start, close + 2, left, text[body:close - 2 if right else close], right))
        pos = close + 2


def tokens(s: str) -> list[str]:
    """The tokens of an action: strings, raw strings, ``|``, ``(``, ``)`` and words."""
    out: list[str] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            return out
        c = s[i]
        end = -1
        if c == '"':
            j = i + 1
            while j < n:
                if s[j] == '"':
                    end = j + 1
                    break
                if s[j] == "\\":
                    if j + 1 >= n or s[j + 1] == "\n":
                        break
                    j += 2
                else:
                    j += 1
        elif c == "`":
            j = s.find("`", i + 1)
            end = j + 1 if j > 0 else -1
        elif c in "|()":
            end = i + 1
        if end < 0:
            end = i
            while end < n and not s[end].isspace() and s[end] not in "|()":
                end += 1
        out.append(s[i:end])
        i = end


def go_str(v: Any) -> str:
    if v is None:
        return "<no value>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e21:
            return "%d" % v if abs(v) < 1e6 else ("%g" % v).replace("e+0", "e+0")
        return repr(v)
    if isinstance(v, list):
        return "[" + " ".join(go_str(x) if x is not None else "<nil>" for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, go_str(v[k]) if v[k] is not None else "<nil>")
                                 for k in sorted(v)) + "]"
    return str(v)


def _json(v: Any) -> str:
    import json
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).replace(
        "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _truncate(s: Any, n: Any) -> str:
    s = go_str(s)
    return s[:int(n)]


def _printf(fmt: str, *args: Any) -> str:
    conv = []
    for a in args:
        conv.append(a if isinstance(a, (int, float)) and not isinstance(a, bool) else go_str(a))
    fmt = fmt.replace("%v", "%s").replace("%q", '"%s"')
    try:
        return fmt % tuple(conv)
    except (TypeError, ValueError) as e:
        raise TemplateError("printf: %s" % e) from None


def _title(s: Any) -> str:
    import re
    return re.sub(r"(^|\s)(\w)", lambda m: m.group(1) + m.group(2).upper(), go_str(s))


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        try:
            v = v[int(k)] if isinstance(v, list) else v.get(k)
        except (IndexError, AttributeError, ValueError):
            raise TemplateError("index of untyped nil") from None
    return v


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json, "join": lambda lst, sep: sep.join(go_str(x) for x in (lst or [])),
    "upper": lambda s: go_str(s).upper(), "lower": lambda s: go_str(s).lower(),
    "title": _title, "truncate": _truncate, "printf": _printf, "index": _index,
    "len": lambda v: len(v or []), "split": lambda s, sep: go_str(s).split(sep),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n", "print": lambda *a: "".join(
        go_str(x) for x in a), "pad": lambda s, a, b: " " * int(a) + go_str(s) + " " * int(b),
}


class GoTypes:
    """How Go sees the data a template runs on. ``types``: the Go type of the value at a path
    of field names from the top (``()``; ``"[]"`` stands for a list's elements); a dict whose
    path names a struct type lacks its fields, except the ``optional`` ones of that path
    (fields Go has that the daemon may leave out: they print "<no value>"). ``raw``: inspect's
    fallback on the decoded JSON (Go's ``map[string]interface{}`` with missingkey=error): a
    missing key fails as "map has no entry for key", except in the maps named by ``maps``
    (fields that are Go maps in the typed inspect structs: their keys are free)."""

    def __init__(self, types: dict[tuple[str, ...], str] | None = None,
                 optional: dict[tuple[str, ...], frozenset[str]] | None = None,
                 raw: bool = False, maps: frozenset[str] = frozenset()) -> None:
        self.types = types or {}
        self.optional = optional or {}
        self.raw = raw
        self.maps = maps

    def scalar(self, path: tuple[str, ...] | None, v: Any) -> str:
        """The Go type name of a non-struct value."""
        if path is not None and path in self.types:
            return self.types[path]
        if self.raw:
            return "interface {}"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float64"
        if isinstance(v, list):
            return "[]string"
        return "string"


class _Tok(str):
    """A token and its offset in the template's text."""
    pos = 0


class Template:
    """A parsed template; ``render(data)`` gives the text. ``methods`` supply fields that take
    arguments (ps's ``{{.Label "k"}}``). ``name`` is the template's name in Go's errors
    (version's is "version"), ``shift`` columns added on the first line (text the caller cut
    off before parsing that Go's positions count)."""

    def __init__(self, text: str, name: str = "", shift: int = 0) -> None:
        self.text = text
        self.name = name
        self.shift = shift
        self.nodes = self._parse(text)

    def _error(self, tok: str, at: str, message: str) -> TemplateError:
        pos = getattr(tok, "pos", 0)
        second = tok.find(".", 1)             # Go places a field chain at its second field
        pos += second if tok.startswith(".") and second > 0 else 0
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + (self.shift if line == 1 else 0)
        return TemplateError('template: %s:%d:%d: executing "%s" at <%s>: %s'
                             % (self.name, line, col, self.name, at, message))

    # a node: ("text", s) | ("expr", tokens) | ("range", tokens, body, else) | ("if", ...)
    def _parse(self, text: str) -> list[Any]:
        pieces: list[Any] = []
        pos = 0
        for start, end, trim_left, body, trim_right in actions(text):
            before = text[pos:start]
            if trim_left:
                before = before.rstrip()
            pieces.append(("text", before))
            offset = start + (4 if trim_left else 2) + len(body) - len(body.lstrip())
            pieces.append(("action", body.strip(), trim_right, offset))
            pos = end
        pieces.append(("text", text[pos:]))
        # trim-right markers apply to the following text
        for i, p in enumerate(pieces):
            if p[0] == "action" and p[2] and i + 1 < len(pieces):
                pieces[i + 1] = ("text", pieces[i + 1][1].lstrip())
        nodes, rest = self._block(pieces, 0)
        if rest != len(pieces):
            raise TemplateError("template: unexpected {{%s}}" % pieces[rest][1])
        return nodes

    def _block(self, pieces: list[Any], i: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while i < len(pieces):
            p = pieces[i]
            if p[0] == "text":
                if p[1]:
                    out.append(p)
                i += 1
                continue
            body = p[1]
            if body.startswith("/*"):
                i += 1
                continue
            word = body.split(None, 1)[0] if body else ""
            if word in ("end", "else"):
                return out, i
            if word in ("range", "if", "with"):
                inner, j = self._block(pieces, i + 1)
                other: list[Any] = []
                if j < len(pieces) and pieces[j][1].startswith("else"):
                    other, j = self._block(pieces, j + 1)
                if j >= len(pieces) or pieces[j][1] != "end":
                    raise TemplateError("template: unexpected EOF")
                out.append((word, self._tokens(body[len(word):], p[3] + len(word)), inner,
                            other))
                i = j + 1
                continue
            out.append(("expr", self._tokens(body, p[3])))
            i += 1
        return out, i

    @staticmethod
    def _tokens(s: str, offset: int) -> list[str]:
        found = tokens(s)
        if "".join(found).replace(" ", "") != "".join(s.split()) and s.strip():
            raise TemplateError("template: bad action: %s" % s.strip())
        out: list[str] = []
        at = 0
        for t in found:
            tok = _Tok(t)
            at = s.find(t, at)
            tok.pos = offset + at
            at += len(t)
            out.append(tok)
        return out

    go: GoTypes | None = None

    def render(self, data: Any, methods: dict[str, Callable[..., Any]] | None = None,
               go: GoTypes | None = None) -> str:
        """The text for ``data``; ``go`` makes missing fields fail as Go's do."""
        out: list[str] = []
        self.go = go
        self._run(self.nodes, data, () if go else None, methods or {}, out)
        return "".join(out)

    # a dot's path (``path``): its field names from the top, None where unknown

    def _run(self, nodes: list[Any], dot: Any, path: tuple[str, ...] | None,
             methods: dict[str, Callable[..., Any]], out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "expr":
                v = self._pipeline(node[1], dot, path, methods)
                out.append(v if isinstance(v, str) else go_str(v))
            else:
                v = self._pipeline(node[1], dot, path, methods)
                truthy = bool(v) and v != "<no value>"
                # the path of the value: known when the pipeline is one field chain
                toks = node[1]
                vpath = path + tuple(toks[0][1:].split(".")) if (
                    path is not None and len(toks) == 1 and toks[0].startswith(".")
                    and toks[0] != ".") else (path if toks == ["."] else None)
                if kind == "range":
                    if isinstance(v, dict):
                        items = list(v.values())
                    elif isinstance(v, list) or v is None:
                        items = v or []
                    else:
                        raise TemplateError("template: range can't iterate over %s"
                                            % go_str(v))
                    ipath = vpath + ("[]",) if vpath is not None else None
                    if items:
                        for item in items:
                            self._run(node[2], item, ipath, methods, out)
                    else:
                        self._run(node[3], dot, path, methods, out)
                elif kind == "with":
                    if truthy:
                        self._run(node[2], v, vpath, methods, out)
                    else:
                        self._run(node[3], dot, path, methods, out)
                else:
                    self._run(node[2] if truthy else node[3], dot, path, methods, out)

    def _pipeline(self, tokens: list[str], dot: Any, path: tuple[str, ...] | None,
                  methods: dict[str, Callable[..., Any]]) -> Any:
        stages: list[list[str]] = [[]]
        depth = 0
        for t in tokens:
            if t == "|" and depth == 0:
                stages.append([])
            else:
                depth += (t == "(") - (t == ")")
                stages[-1].append(t)
        value: Any = _MISSING
        for stage in stages:
            if not stage:
                raise TemplateError("template: missing command in pipeline")
            value = self._command(stage, dot, path, methods, value)
        return value

    def _command(self, tokens: list[str], dot: Any, path: tuple[str, ...] | None,
                 methods: dict[str, Callable[..., Any]], piped: Any) -> Any:
        args: list[Any] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t == "(":
                depth, j = 1, i + 1
                while j < len(tokens) and depth:
                    depth += (tokens[j] == "(") - (tokens[j] == ")")
                    j += 1
                args.append(("value", self._pipeline(tokens[i + 1:j - 1], dot, path,
                                                     methods)))
                i = j
                continue
            args.append(("token", t))
            i += 1
        head_kind, head = args[0]
        rest = [self._value(a, dot, path, methods) for a in args[1:]]
        if piped is not _MISSING:
            rest.append(piped)
        if head_kind == "token" and head in FUNCS:
            try:
                return FUNCS[head](*rest)
            except TypeError:
                raise TemplateError("template: wrong number of args for %s" % head) from None
            except (ValueError, AttributeError, OverflowError, LookupError) as e:
                raise self._error(head, " ".join(tokens), "error calling %s: %s"
                                  % (head, e)) from None
        if head_kind == "token" and head.startswith(".") and head[1:] in methods and rest:
            return methods[head[1:]](*rest)
        if rest:
            raise TemplateError("template: can't give argument to non-function %s" % head)
        return self._value(args[0], dot, path, methods)

    def _value(self, arg: tuple[str, Any], dot: Any, path: tuple[str, ...] | None,
               methods: dict[str, Callable[..., Any]]) -> Any:
        kind, t = arg
        if kind == "value":
            return t
        if t.startswith('"'):
            try:
                return loads(t)
            except ValueError:
                raise TemplateError("template: bad string: %s" % t) from None
        if t.startswith("`"):
            return t[1:-1]
        if t == ".":
            return dot
        if t.startswith("."):
            return self._field(t, dot, path, methods)
        if t in ("true", "false"):
            return t == "true"
        if t == "nil":
            return None
        try:
            return int(t)
        except ValueError:
            pass
        try:
            return float(t)
        except ValueError:
            raise TemplateError('template: function "%s" not defined' % t) from None


    def _field(self, t: str, dot: Any, path: tuple[str, ...] | None,
               methods: dict[str, Callable[..., Any]]) -> Any:
        """The value of the field chain ``t`` (``.A.B``) from ``dot``."""
        go = self.go or _PLAIN
        v = dot
        for part in t[1:].split("."):
            if isinstance(v, dict):
                if part in v:
                    v = v[part]
                elif part in methods and v is dot:
                    return methods[part]()
                elif path is None:
                    return None
                elif path in go.types and not go.types[path].startswith(("map", "[]")):
                    if part not in go.optional.get(path, ()):
                        raise self._error(t, t, "can't evaluate field %s in type %s"
                                          % (part, go.types[path]))
                    v = None                  # a field the daemon left out: Go's zero
                elif go.raw and not (path and (path[-1] in go.maps or
                                               ".".join(path[-2:]) in go.maps)):
                    raise self._error(t, t, 'map has no entry for key "%s"' % part)
                else:
                    return None
            elif v is None:
                # Go knows a nil field's type: a struct's fields, or a scalar's having none
                kind = go.types.get(path, "map") if path is not None else "map"
                if kind.startswith("map") or part in go.optional.get(path or (), ()):
                    return None
                raise self._error(t, t, "can't evaluate field %s in type %s" % (part, kind))
            else:
                raise self._error(t, t, "can't evaluate field %s in type %s"
                                  % (part, go.scalar(path, v)))
            if path is not None:
                path = path + (part,)
        return v


_MISSING = object()
_PLAIN = GoTypes()


def tabwrite(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go's tabwriter as docker sets it up (minwidth 10, padding 3, spaces): every cell but
    the last of a line padded to its column's width."""
    widths: dict[int, int] = {}
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + padding, minwidth)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)


def _list_type(headers: dict[str, str]) -> tuple[str, str, bool, bool]:
    """The Go type docker formats a list's rows with, known by the list's headers, its
    error's prefix, whether Go's positions count a ``table `` prefix, and whether docker
    tries the template with no rows; ("", "", ...) for lists whose fields stay lenient."""
    if headers.get("ID") == "CONTAINER ID" and "Command" in headers:
        return "*formatter.ContainerContext", "failed to execute template: ", True, True
    if "CPUPerc" in headers:
        return "*container.statsContext", "template parsing error: ", False, False
    if "Repository" in headers:
        return "*formatter.imageContext", "template parsing error: ", False, False
    if headers.get("Name") == "VOLUME NAME":
        return "*formatter.volumeContext", "template parsing error: ", False, False
    if headers.get("ID") == "NETWORK ID":
        return "*network.networkContext", "template parsing error: ", False, False
    if headers.get("ID") == "IMAGE" and "CreatedBy" in headers:
        return "*image.historyContext", "template parsing error: ", False, False
    if "DockerEndpoint" in headers:
        return "*formatter.clientContextContext", "template parsing error: ", False, False
    return "", "", False, False


def render_list(fmt: str, items: list[dict[str, Any]], headers: dict[str, str],
                methods_for: Callable[[dict[str, Any]], dict[str, Callable[..., Any]]] | None
                = None) -> str:
    """docker's list output for --format: "table ..." (header row, tab-aligned), "json" (one
    JSON object a line), or a plain template rendered per item."""
    if fmt == "json":
        fmt = "{{json .}}"
    table = fmt.startswith("table")
    whole = len(fmt)
    if table:
        fmt = fmt[5:].lstrip(" ") or "{{json .}}"
    go_type, prefix, keeps_table, checks_empty = _list_type(headers)
    tmpl = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"),
                    shift=whole - len(fmt) if keeps_table else 0)
    go = GoTypes({(): go_type}) if go_type else None
    out = []
    try:
        if go and checks_empty and not items:     # ps tries the template on an empty row
            tmpl.render(dict.fromkeys(headers, ""), {"Label": lambda k: ""}, go)
        if table:
            head = {k: v for k, v in headers.items()}
            hdr_methods = {"Label": lambda k: "LABEL " + str(k).upper()}
            out.append(tmpl.render(head, hdr_methods))
        for item in items:
            out.append(tmpl.render(item, methods_for(item) if methods_for else None, go))
    except TemplateError as e:
        raise TemplateError(prefix + str(e)) from None
    if not table:
        return "".join(line + "\n" for line in out)
    rows = []
    for text in out:
        for line in text.split("\n"):
            rows.append(line.split("\t"))
    return tabwrite(rows)
