"""Image references as the docker CLI shows them: normalized ("docker.io/library/busybox:latest")
and familiar ("busybox:latest")."""
from __future__ import annotations

# The grammar is checked by plain predicates (``re`` costs a short command milliseconds of
# imports); tests/cli/test_parsers.py proves them equal to docker's expressions, matched whole:
#   name    [a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*
#   tag     [\w][\w.-]{0,127}
#   domain  (?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?
#   digest  [a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HOST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")


def _components(text: str, separators: tuple[str, ...], dashes: bool) -> bool:
    """Runs of [a-z0-9] joined by one of ``separators`` (or by any run of "-" if
    ``dashes``), starting and ending with a run."""
    i, n = 0, len(text)
    while True:
        start = i
        while i < n and text[i] in _LOWER_ALNUM:
            i += 1
        if i == start:
            return False
        if i == n:
            return True
        sep = i
        while i < n and text[i] not in _LOWER_ALNUM:
            i += 1
        between = text[sep:i]
        if between not in separators and not (dashes and between.strip("-") == ""):
            return False


def valid_name(path: str) -> bool:
    return all(_components(c, (".", "_", "__"), True) for c in path.split("/"))


def valid_tag(tag: str) -> bool:
    return (0 < len(tag) <= 128 and (tag[0].isalnum() or tag[0] == "_")
            and all(c.isalnum() or c in "_.-" for c in tag))


def valid_domain(domain: str) -> bool:
    if domain.startswith("["):
        end = domain.find("]")
        host, port = domain[1:end], domain[end + 1:]
        if end < 0 or not host or not set(host) <= _HEX | {":"}:
            return False
    else:
        host, colon, port = domain.partition(":")
        port = colon + port
        if not host or not set(host) <= _HOST:
            return False
    return not port or port[0] == ":" and len(port) > 1 and set(port[1:]) <= _DIGITS


def valid_digest(digest: str) -> bool:
    algorithm, colon, hex_part = digest.partition(":")
    return (bool(colon) and _components(algorithm, (".", "+", "_", "-"), False)
            and len(hex_part) >= 32 and set(hex_part) <= _HEX)


class Reference:
    """domain, path, tag ("" when none) and digest ("" when none)."""

    def __init__(self, domain: str, path: str, tag: str, digest: str) -> None:
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def name(self) -> str:
        return self.domain + "/" + self.path

    def familiar_name(self) -> str:
        if self.domain == "docker.io":
            return self.path[len("library/"):] if self.path.startswith("library/") and \
                self.path.count("/") == 1 else self.path
        return self.name

    def familiar(self) -> str:
        return self.familiar_name() + (":" + self.tag if self.tag else "") + \
            ("@" + self.digest if self.digest else "")

    def __str__(self) -> str:
        return self.name + (":" + self.tag if self.tag else "") + \
            ("@" + self.digest if self.digest else "")

    def with_default_tag(self) -> Reference:
        return Reference(self.domain, self.path, self.tag or ("" if self.digest else "latest"),
                         self.digest)


def parse(text: str) -> Reference:
    """docker's ParseNormalizedNamed; ValueError("invalid reference format") when malformed."""
    rest, _, digest = text.partition("@")
    if digest and not valid_digest(digest):
        raise ValueError("invalid reference format")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not valid_tag(tag):
            raise ValueError("invalid reference format")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not valid_domain(first):
            raise ValueError("invalid reference format")
        domain, path = first, remainder
    else:
        domain, path = "docker.io", rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not path or not valid_name(path):
        if path and path.lower() == path or not path:
            raise ValueError("invalid reference format")
        raise ValueError("invalid reference format: repository name (%s) must be lowercase"
                         % path)
    if len(domain + "/" + path) > 255:
        raise ValueError("invalid reference format")
    return Reference(domain, path, tag, digest)
