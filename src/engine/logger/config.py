"""A container's ``HostConfig.LogConfig``, validated as dockerd validates it.

Two drivers: ``json-file`` (the shim writes it, with ``max-size``/``max-file`` rotation) and
``none``. An empty ``Type`` means the default, ``json-file``. Options are checked with
docker's rules and messages: the generic ``mode``/``max-buffer-size`` first, then the
driver's (unknown keys, ``max-size`` in go-units' decimal units, ``max-file`` >= 1,
``compress``). Any other driver is refused with what dockerd answers for a driver it does
not have.
"""
from __future__ import annotations

from pyrunc.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DRIVER = "json-file"
JSON_FILE_OPTIONS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                     "env-regex", "tag")
# A rotation renames every kept file once: bound the loop an API caller can ask for.
MAX_FILE_LIMIT = 10000
_INT64_MAX = (1 << 63) - 1
_DECIMAL = {"k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12, "p": 10 ** 15}
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DIGITS = "0123456789"


class LogConfig:
    """What the engine needs of a validated log configuration: the driver, the shim's
    ``log_max_size`` (bytes, 0 for no limit) and ``log_max_file``."""

    __slots__ = ("type", "max_size", "max_file")

    def __init__(self, type: str, max_size: int = 0, max_file: int = 1) -> None:
        self.type = type
        self.max_size = max_size
        self.max_file = max_file

    @property
    def readable(self) -> bool:
        """Whether ``docker logs`` can read this driver's output (json-file only)."""
        return self.type == "json-file"

    def check_readable(self) -> None:
        """Raise docker's error for reading logs a driver does not keep (``none``)."""
        if not self.readable:
            raise FailedPrecondition("configured logging driver does not support reading")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LogConfig) and (self.type, self.max_size, self.max_file)
                == (other.type, other.max_size, other.max_file))

    def __repr__(self) -> str:
        return "LogConfig(type=%r, max_size=%d, max_file=%d)" % (self.type, self.max_size,
                                                                  self.max_file)


def parse_log_config(log_config: dict[str, Any] | None) -> LogConfig:
    """Validate ``{"Type": ..., "Config": {...}}`` (None: the default); InvalidArgument with
    dockerd's message when it would refuse it."""
    if log_config is None:
        log_config = {}
    if not isinstance(log_config, dict):
        raise InvalidArgument("LogConfig: must be an object with Type and Config")
    driver = log_config.get("Type") or DEFAULT_DRIVER
    options = log_config.get("Config") or {}
    if not isinstance(driver, str):
        raise InvalidArgument("LogConfig.Type: must be a string")
    if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
        raise InvalidArgument("LogConfig.Config: must map option names to strings")
    if driver == "none":
        return LogConfig("none")
    if driver != "json-file":
        raise InvalidArgument('error looking up logging plugin %s: plugin "%s" not found'
                              % (driver, driver))
    _check_mode(options)
    for key in options:
        if key not in JSON_FILE_OPTIONS and key not in ("mode", "max-buffer-size"):
            raise InvalidArgument("unknown log opt '%s' for json-file log driver" % key)
    max_size = 0
    if "max-size" in options:
        max_size = parse_human_size(options["max-size"])
        if max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    max_file = 1
    if "max-file" in options:
        max_file = _atoi(options["max-file"])
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        if max_file > MAX_FILE_LIMIT:
            raise InvalidArgument("max-file cannot be more than %d" % MAX_FILE_LIMIT)
    if "compress" in options:
        compress = _parse_bool(options["compress"])
        if compress and (max_file == 1 or max_size == 0):
            raise InvalidArgument("compress cannot be true when max-file is less than 2 or "
                                  "max-size is not set")
        if compress:
            raise InvalidArgument("compress: compressed rotated log files are not supported "
                                  "by this json-file log driver")
    return LogConfig("json-file", max_size, max_file)


def _check_mode(options: dict[str, str]) -> None:
    mode = options.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidArgument("logger: logging mode not supported: %s" % mode)
    if "max-buffer-size" in options:
        if mode != "non-blocking":
            raise InvalidArgument("logger: max-buffer-size option is only supported with "
                                  "'mode=non-blocking'")
        try:
            _parse_size(options["max-buffer-size"], _BINARY)
        except InvalidArgument as e:
            raise InvalidArgument("error parsing option max-buffer-size: %s" % e) from None


def parse_human_size(text: str) -> int:
    """Bytes of a size in go-units' ``FromHumanSize`` syntax, decimal units ("10m" is
    10,000,000; "1.5k", "44kB", "2MiB"), as dockerd reads json-file's ``max-size``."""
    return _parse_size(text, _DECIMAL)


def _parse_size(text: str, units: dict[str, int]) -> int:
    sep = max(text.rfind(c) for c in _DIGITS + ". ")
    if sep < 0:
        raise InvalidArgument("invalid size: '%s'" % text)
    if text[sep] == " ":
        number, suffix = text[:sep], text[sep + 1:]
    else:
        number, suffix = text[:sep + 1], text[sep + 1:]
    size = _parse_float(number)
    if size < 0:
        raise InvalidArgument("invalid size: '%s'" % text)
    lowered = suffix.lower()
    if lowered and (len(lowered) > 3 or (lowered[0] == "b" and len(lowered) > 1)
                    or (lowered[0] != "b" and lowered[0] not in units)
                    or (len(lowered) == 2 and lowered[1] != "b")
                    or (len(lowered) == 3 and lowered[1:] != "ib")):
        raise InvalidArgument("invalid suffix: '%s'" % lowered)
    if lowered and lowered[0] != "b":
        size *= units[lowered[0]]
    if size >= _INT64_MAX:
        # Go's conversion of an out-of-range float64 to int64 gives the minimum int64.
        return -(1 << 63)
    return int(size)


def _parse_float(text: str) -> float:
    """Go's strconv.ParseFloat for decimal text: [+-]digits[.digits][e[+-]digits]."""
    body = text[1:] if text[:1] in "+-" else text
    mantissa, e, exponent = body.lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    ok = bool(whole or fraction) and all(c in _DIGITS for c in whole + fraction)
    if e:
        digits = exponent[1:] if exponent[:1] in "+-" else exponent
        ok = ok and bool(digits) and all(c in _DIGITS for c in digits)
    if not ok:
        raise InvalidArgument('strconv.ParseFloat: parsing "%s": invalid syntax' % text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidArgument('strconv.ParseFloat: parsing "%s": value out of range' % text)
    return value


def _atoi(text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not body or any(c not in _DIGITS for c in body):
        raise InvalidArgument('strconv.Atoi: parsing "%s": invalid syntax' % text)
    value = int(text)
    if not -(1 << 63) <= value <= _INT64_MAX:
        raise InvalidArgument('strconv.Atoi: parsing "%s": value out of range' % text)
    return value


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidArgument('strconv.ParseBool: parsing "%s": invalid syntax' % text)
