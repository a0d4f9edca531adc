"""TLS to the daemon (``--tls``, ``--tlsverify``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``,
contexts with TLS material), on Python's ``ssl`` module; imported only when TLS is on.

Failures read as the Go client's, since docker's messages are what users search for:
``tls: failed to verify certificate: x509: certificate signed by unknown authority``,
``remote error: tls: certificate required``, ``tls: first record does not look like a TLS
handshake``, ``x509: certificate has expired or is not yet valid: current time T is after T``.
"""
from __future__ import annotations

import _socket
import ssl
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class TLSConfig:
    """What the client presents and trusts: ``ca`` (None: the system's roots), the client
    certificate ``cert`` and its ``key`` (None: none), ``verify`` the server's certificate
    and name (``--tlsverify``; ``--tls`` alone encrypts without checking)."""

    def __init__(self, ca: str | None, cert: str | None, key: str | None,
                 verify: bool) -> None:
        self.ca = ca
        self.cert = cert
        self.key = key
        self.verify = verify
        self._context: ssl.SSLContext | None = None
        # the last connection's TLS session: the next connection of the command resumes it
        # (no certificate exchange, no signature: a command makes two or more connections)
        self.session: ssl.SSLSession | None = None

    def load(self) -> ssl.SSLContext:
        """Read and check the files now, as docker does before any command: OSError for a
        file that cannot be opened (docker's "open PATH: REASON"), SetupError for one that is
        not what it should be, in docker's words."""
        for path in (self.ca, self.cert, self.key):
            if path:
                with open(path, "rb"):
                    pass
        if not (self.cert and self.key):      # half a pair is no pair, as docker's
            self.cert = self.key = None
        return self.context()

    def context(self, verify: bool | None = None, check_hostname: bool | None = None
                ) -> ssl.SSLContext:
        if verify is None and check_hostname is None and self._context is not None:
            return self._context
        verify = self.verify if verify is None else verify
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = bool(verify) if check_hostname is None else check_hostname
        if self.ca:
            try:
                ctx.load_verify_locations(self.ca)
            except (ssl.SSLError, ValueError):
                raise SetupError("failed to retrieve context tls info: ca.pem seems "
                                 "invalid") from None
        elif verify:
            ctx.load_default_certs()
        if not verify:
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert and self.key:
            with open(self.cert, "rb") as f:
                if b"-----BEGIN" not in f.read():
                    raise SetupError("failed to retrieve context tls info: tls: failed to "
                                     "find any PEM data in certificate input")
            with open(self.key, "rb") as f:
                if b"PRIVATE KEY-----" not in f.read():
                    raise SetupError("no valid private key found")
            try:
                ctx.load_cert_chain(self.cert, self.key)
            except ssl.SSLError:
                raise SetupError("failed to retrieve context tls info: tls: private key does "
                                 "not match public key") from None
        if verify is self.verify and check_hostname is None:
            self._context = ctx
        return ctx


class SetupError(Exception):
    """TLS material that cannot be used (docker's "Failed to initialize: ...")."""


def wrap(sock: Any, config: TLSConfig, hostname: str) -> TLSSocket:
    """``sock`` (connected) after a TLS handshake with ``hostname``; OSError on failure, whose
    ``go_message`` says why."""
    ctx = config.context()
    peer = (sock.family, sock.getpeername())
    tls = TLSSocket(sock, ctx, hostname, config)
    try:
        tls.handshake()
    except ssl.SSLCertVerificationError as e:
        tls.close()
        e.tls_detail = _verify_detail(e, config, hostname, peer)  # type: ignore[attr-defined]
        raise
    except BaseException:
        tls.close()
        raise
    return tls


QUICKACK = getattr(_socket, "TCP_QUICKACK", None)


class TLSSocket:
    """A TLS connection on a connected socket through memory BIOs, with what the client needs
    of a socket (``sendall``, ``recv``, ``fileno``, ``close``) and ``close_write``: a
    close_notify after which reading goes on (Go's ``tls.Conn.CloseWrite``: how stdin's end
    reaches an attached container). One thread may read while another writes (attach feeds
    stdin from a thread): the TLS state is behind a lock, the socket's reads are not.
    ``recv`` returns everything that can be decrypted, so a ``select`` on ``fileno`` never
    misses data held in the TLS layer."""

    def __init__(self, sock: Any, ctx: ssl.SSLContext, hostname: str,
                 config: TLSConfig | None = None) -> None:
        import threading
        self.sock = sock
        self.family = sock.family
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._config = config
        self._tls = ctx.wrap_bio(self._in, self._out, server_hostname=hostname,
                                 session=config.session if config else None)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._eof = False
        self._last = b""                  # the last bytes read from the socket
        self._ready = False               # handshake done

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            with self._write_lock:
                self.sock.sendall(data)

    def _fill(self) -> bool:
        if QUICKACK is not None:
            # acknowledge at once: a server whose small writes (session tickets, headers,
            # body) wait for our ACK under Nagle's algorithm would otherwise wait out our
            # delayed ACK, 40 ms a request
            self.sock.setsockopt(_socket.IPPROTO_TCP, QUICKACK, 1)
        data = self.sock.recv(65536)
        self._last = data
        if not data:
            return False
        with self._lock:
            self._in.write(data)
        return True
    def handshake(self) -> None:
        first = b""
        while True:
            with self._lock:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                except ssl.SSLError as e:
                    if e.reason in NOT_TLS:          # Go reads the record's first bytes
                        e.tls_detail = (  # type: ignore[attr-defined]
                            "http: server gave HTTP response to HTTPS client"
                            if first.startswith(b"HTTP/") else
                            "tls: first record does not look like a TLS handshake")
                    raise
                self._flush()
            if done:
                self._ready = True
                return
            if not self._fill():
                raise ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
            if len(first) < 5:
                first += self._last[:5 - len(first)]

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def sendall(self, data: bytes) -> None:
        try:
            with self._lock:
                view = memoryview(data)
                while view:
                    n = self._tls.write(view[:16384])
                    view = view[n:]
                self._flush()
        except (BrokenPipeError, ConnectionResetError):
            # a server that refused us after the handshake (TLS 1.3 checks the client's
            # certificate then) sent an alert before closing: that is the reason to give
            self.recv()
            raise

    def recv(self, n: int = 65536) -> bytes:
        while True:
            parts: list[bytes] = []
            got = 0
            with self._lock:
                try:
                    while got < n:
                        parts.append(self._tls.read(n))
                        got += len(parts[-1])
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:           # the peer's close_notify
                    self._eof = True
                self._flush()
            if parts or self._eof:
                return b"".join(parts)
            if not self._fill():
                return b""

    def close_write(self) -> None:
        with self._lock:
            try:
                self._tls.unwrap()
            except ssl.SSLWantReadError:                 # the peer's close_notify not in yet
                pass
            self._flush()

    def close(self) -> None:
        if self._config is not None and self._ready:
            try:
                session = self._tls.session
                if session is not None and session.has_ticket:
                    self._config.session = session
            except ValueError:                          # no session to speak of
                pass
        self.sock.close()


def go_message(e: OSError) -> str:
    """The Go client's words for a failed TLS connection or read."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return "tls: failed to verify certificate: " + getattr(
            e, "tls_detail", "x509: %s" % (e.verify_message or e))
    if isinstance(e, ssl.SSLEOFError):
        return "EOF"
    if isinstance(e, ssl.SSLError):
        reason = e.reason or ""
        if getattr(e, "tls_detail", None):
            return str(e.tls_detail)  # type: ignore[attr-defined]
        if reason in NOT_TLS:
            return "tls: first record does not look like a TLS handshake"
        for prefix in ("TLSV13_ALERT_", "TLSV1_ALERT_", "SSLV3_ALERT_"):
            if reason.startswith(prefix):
                alert = reason[len(prefix):]
                return "remote error: tls: " + ALERTS.get(alert, alert.lower().replace("_", " "))
        if reason == "UNEXPECTED_EOF_WHILE_READING":
            return "EOF"
        return "tls: " + (reason.lower().replace("_", " ") or str(e))
    if isinstance(e, ConnectionResetError):
        return "read: connection reset by peer"
    if isinstance(e, BrokenPipeError):
        return "write: broken pipe"
    return e.strerror.lower() if e.strerror else str(e)


# OpenSSL's alert names -> Go's crypto/tls alert texts (where they differ from the name)
ALERTS = {
    "CERTIFICATE_REQUIRED": "certificate required",
    "BAD_CERTIFICATE": "bad certificate",
    "UNKNOWN_CA": "unknown certificate authority",
    "CERTIFICATE_EXPIRED": "expired certificate",
    "CERTIFICATE_REVOKED": "revoked certificate",
    "CERTIFICATE_UNKNOWN": "unknown certificate",
    "UNSUPPORTED_CERTIFICATE": "unsupported certificate",
    "HANDSHAKE_FAILURE": "handshake failure",
    "PROTOCOL_VERSION": "protocol version not supported",
    "ACCESS_DENIED": "access denied",
    "DECRYPT_ERROR": "error decrypting message",
    "INTERNAL_ERROR": "internal error",
}

# OpenSSL's reasons for a first record that is not TLS
NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
           "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LENGTH_MISMATCH"}
UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}   # OpenSSL's X509_V_ERR_* for an untrusted chain
NOT_YET_VALID, EXPIRED, HOSTNAME_MISMATCH, IP_MISMATCH = 9, 10, 62, 64


def _verify_detail(e: ssl.SSLCertVerificationError, config: TLSConfig, hostname: str,
                   peer: tuple[int, Any]) -> str:
    """Go's x509 text for a failed verification. Go names the certificate's dates and names;
    OpenSSL does not, so they are read from the certificate on a second connection that
    checks less (only the error path pays for it)."""
    code = e.verify_code
    if code in UNKNOWN_AUTHORITY:
        return "x509: certificate signed by unknown authority"
    if code in (NOT_YET_VALID, EXPIRED):
        cert = _second_look(config.context(verify=False), hostname, peer)
        when = validity(cert[0]) if cert else None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = "x509: certificate has expired or is not yet valid"
        if when:
            text += (": current time %s is before %s" % (now, when[0]) if code == NOT_YET_VALID
                     else ": current time %s is after %s" % (now, when[1]))
        return text
    if code in (HOSTNAME_MISMATCH, IP_MISMATCH):
        cert = _second_look(config.context(check_hostname=False), hostname, peer)
        if cert is not None:
            return _mismatch(cert[1], hostname)
    return "x509: %s" % (e.verify_message or e)


def _mismatch(cert: dict[str, Any], hostname: str) -> str:
    """Go's words for a certificate not issued to ``hostname``."""
    sans = cert.get("subjectAltName")
    if sans is None:
        names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        if hostname.lower() in (n.lower() for n in names):
            return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if _is_ip(hostname):
        valid = [str(v) for k, v in sans or () if k == "IP Address"]
        if not valid:
            return ("x509: cannot validate certificate for %s because it doesn't contain any "
                    "IP SANs" % hostname)
    else:
        valid = [str(v) for k, v in sans or () if k == "DNS"]
    if not valid:
        return "x509: certificate is not valid for any names, but wanted to match " + hostname
    return "x509: certificate is valid for %s, not %s" % (", ".join(valid), hostname)


def _is_ip(host: str) -> bool:
    import _socket
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def _second_look(ctx: ssl.SSLContext, hostname: str, peer: tuple[int, Any]
                 ) -> tuple[bytes, dict[str, Any]] | None:
    """The server's certificate (DER, and as ``getpeercert`` decodes it when ``ctx``
    verifies) from a new connection; None if that fails too."""
    import socket
    try:
        with socket.socket(peer[0], socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(peer[1])
            with ctx.wrap_socket(s, server_hostname=hostname) as t:
                return t.getpeercert(binary_form=True) or b"", t.getpeercert() or {}
    except OSError:
        return None


def validity(der: bytes) -> tuple[str, str] | None:
    """(notBefore, notAfter) of a DER certificate as RFC 3339 UTC ("2026-12-05T02:05:06Z");
    None if it does not parse."""
    try:
        _, start, _ = _element(der, 0)               # Certificate
        _, pos, _ = _element(der, start)             # TBSCertificate's contents
        tag, _, end = _element(der, pos)
        if tag == 0xA0:                              # [0] version
            pos = end
        for _ in range(3):                           # serialNumber, signature, issuer
            pos = _element(der, pos)[2]
        tag, pos, _ = _element(der, pos)             # validity
        out = []
        for _ in range(2):
            tag, a, b = _element(der, pos)
            out.append(_time(tag, der[a:b].decode("ascii")))
            pos = b
        return out[0], out[1]
    except (IndexError, ValueError):
        return None


def _element(der: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``i``."""
    tag, n = der[i], der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4:
            raise ValueError("bad DER length")
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    if i + n > len(der):
        raise ValueError("truncated DER")
    return tag, i, i + n


def _time(tag: int, text: str) -> str:
    if tag == 0x17:                                  # UTCTime YYMMDDHHMMSSZ
        yy = int(text[:2])
        text = ("19" if yy >= 50 else "20") + text
    elif tag != 0x18:                                # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("not a time")
    if len(text) != 15 or not text.endswith("Z") or not text[:14].isdigit():
        raise ValueError("bad time")
    return "%s-%s-%sT%s:%s:%sZ" % (text[:4], text[4:6], text[6:8], text[8:10], text[10:12],
                                   text[12:14])
