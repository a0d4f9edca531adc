"""Image references as the docker CLI shows them: normalized ("docker.io/library/busybox:latest")
and familiar ("busybox:latest")."""
from __future__ import annotations

import re

_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                   r"[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


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
    if digest and not re.match(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$", digest):
        raise ValueError("invalid reference format")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise ValueError("invalid reference format")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.match(first):
            raise ValueError("invalid reference format")
        domain, path = first, remainder
    else:
        domain, path = "docker.io", rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not path or not _NAME.match(path):
        if path and path.lower() == path or not path:
            raise ValueError("invalid reference format")
        raise ValueError("invalid reference format: repository name (%s) must be lowercase"
                         % path)
    if len(domain + "/" + path) > 255:
        raise ValueError("invalid reference format")
    return Reference(domain, path, tag, digest)
