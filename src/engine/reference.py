"""Image references: docker's grammar, normalisation and familiar formatting.

A reference names an image in a registry::

    [domain/]path[:tag][@digest]

``parse_normalized("nginx")`` is ``docker.io/library/nginx`` (no tag: the caller adds
``latest`` with :meth:`Reference.with_default_tag` where docker would); ``familiar`` turns
the canonical form back into what a user typed.
"""
from __future__ import annotations

import re

from pyrunc.errors import InvalidArgument, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + r")"
_DOMAIN = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN + r"/)?" + _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"

REFERENCE_RE = re.compile(
    r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$", re.ASCII)
TAG_RE = re.compile(r"^" + _TAG + r"$", re.ASCII)
DIGEST_RE = re.compile(r"^" + _DIGEST + r"$", re.ASCII)
_ANCHORED_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_SPLIT_NAME_RE = re.compile(r"^(?:(" + _DOMAIN + r")/)?(" + _PATH_COMPONENT
                            + r"(?:/" + _PATH_COMPONENT + r")*)$", re.ASCII)

# The algorithms the OCI image spec registers (descriptor.md, "Registered algorithms"):
# sha256 (every implementation MUST verify it) and sha512 (MAY). sha384, which docker's digest
# package also knows, is not registered: content named by it could not be verified by other
# OCI tools, so it is refused like any other algorithm rather than accepted unverified.
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_LENGTHS = DIGEST_ALGORITHMS


def _invalid(reason=None):
    message = "invalid reference format"
    if reason:
        message += ": " + reason
    return InvalidArgument(message)


def validate_digest(digest: str) -> str:
    """Check ``algorithm:hex`` for an algorithm this engine verifies (sha256, sha512); return
    it. Anything else, malformed or another algorithm, is ``InvalidArgument``."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise InvalidArgument("invalid digest format: %s" % digest)
    algorithm, hex_ = digest.split(":", 1)
    if algorithm not in _DIGEST_LENGTHS:
        raise InvalidArgument("unsupported digest algorithm: %s" % digest)
    if len(hex_) != _DIGEST_LENGTHS[algorithm]:
        raise InvalidArgument("invalid checksum digest length: %s" % digest)
    if hex_ != hex_.lower():
        raise InvalidArgument("invalid checksum digest format: %s" % digest)
    return digest


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data`` for a supported algorithm."""
    import hashlib
    if algorithm not in DIGEST_ALGORITHMS:
        raise InvalidArgument("unsupported digest algorithm: %s" % algorithm)
    return "%s:%s" % (algorithm, hashlib.new(algorithm, data).hexdigest())


def verify_digest(digest: str, data: bytes, what: str) -> str:
    """Check that ``data`` has ``digest`` (validated first); ``what`` names the content in
    the error: ``manifest for x@sha512:…: digest mismatch: expected …, got …``."""
    validate_digest(digest)
    actual = compute_digest(data, digest.split(":", 1)[0])
    if actual != digest:
        raise InvalidArgument("%s: digest mismatch: expected %s, got %s" % (what, digest, actual))
    return digest


class Reference:
    """A parsed reference: ``domain``, ``path``, optional ``tag`` and ``digest``.

    Compare and hash by the canonical string; ``str()`` is the canonical form
    (``docker.io/library/nginx:latest``), ``familiar`` the short one (``nginx:latest``).
    """

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """The repository's full name: ``docker.io/library/nginx``."""
        return self.domain + "/" + self.path if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The repository as a user writes it: ``nginx``, ``user/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            rest = path[len(OFFICIAL_REPO_PREFIX):]
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in rest:
                path = rest
            return path
        return self.name

    @property
    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def _suffix(self):
        suffix = ""
        if self.tag is not None:
            suffix += ":" + self.tag
        if self.digest is not None:
            suffix += "@" + self.digest
        return suffix

    def with_default_tag(self) -> Reference:
        """The reference docker pulls: ``latest`` when neither tag nor digest is given."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG)
        return self

    def with_tag(self, tag: str) -> Reference:
        if not TAG_RE.match(tag):
            raise InvalidArgument("invalid tag format: %s" % tag)
        return Reference(self.domain, self.path, tag)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, validate_digest(digest))

    def repository(self) -> Reference:
        """The reference without tag and digest."""
        return Reference(self.domain, self.path)

    @property
    def object(self) -> str:
        """What the registry is asked for: the digest if there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self):
        return self.name + self._suffix()

    def __repr__(self):
        return "Reference(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def parse(text: str) -> Reference:
    """Parse a reference exactly as written (no normalisation): docker's ``reference.Parse``."""
    match = REFERENCE_RE.match(text)
    if match is None:
        if text == "":
            raise _invalid("repository name must have at least one component")
        if REFERENCE_RE.match(text.lower()):
            raise _invalid("repository name must be lowercase")
        raise _invalid()
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid("repository name must not be more than %d characters"
                       % NAME_TOTAL_LENGTH_MAX)
    if digest is not None:
        validate_digest(digest)
    parts = _SPLIT_NAME_RE.match(name)
    domain, path = parts.group(1), parts.group(2)  # type: ignore[union-attr]
    return Reference(domain or "", path, tag, digest)


def split_docker_domain(name: str) -> tuple[Any, ...]:
    """Split ``name`` into (domain, remainder) with docker.io and ``library/`` filled in."""
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost"
                       and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[slash + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_normalized(text: str) -> Any:
    """Parse what a user typed into a canonical reference: docker's ``ParseNormalizedNamed``.

    ``nginx`` -> ``docker.io/library/nginx``; no tag is added.
    """
    if _ANCHORED_IDENTIFIER_RE.match(text):
        raise InvalidArgument("invalid repository name (%s), cannot specify 64-byte "
                              "hexadecimal strings" % shown(text))
    domain, remainder = split_docker_domain(text)
    colon = remainder.find(":")
    remote_name = remainder[:colon] if colon > -1 else remainder
    if remote_name.lower() != remote_name:
        raise _invalid("repository name (%s) must be lowercase" % shown(remote_name))
    ref = parse(domain + "/" + remainder)
    if not ref.domain:
        raise _invalid()
    return ref


def parse_docker_ref(text: str) -> Any:
    """A normalised reference with ``latest`` added when no tag or digest is given."""
    return parse_normalized(text).with_default_tag()
