"""Signal names and numbers as runc's ``kill`` accepts them: KILL, SIGKILL, 9, RTMIN+3."""
import signal

from pyrunc.errors import InvalidArgument


def parse_signal(text):
    if text.isascii() and text.isdigit():
        num = int(text)
        if 0 < num < signal.SIGRTMAX + 1:
            return num
        raise InvalidArgument("unknown signal %r" % text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base in ("SIGRTMIN", "SIGRTMAX"):
        if name.startswith(base) and name != base:
            sign, offset = name[len(base)], name[len(base) + 1:]
            if sign in "+-" and offset.isdigit():
                num = getattr(signal, base) + (int(offset) if sign == "+" else -int(offset))
                if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
                    return num
            raise InvalidArgument("unknown signal %r" % text)
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise InvalidArgument("unknown signal %r" % text)
    return int(sig)
