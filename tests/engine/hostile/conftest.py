"""Every hostile test has a deadline: an input that makes the engine loop (a negative member
size once did, holding the collection lock) fails its test instead of hanging the suite."""
import signal

import pytest


class Deadline(Exception):
    pass


def _raise(signum, frame):
    raise Deadline("still running after the test's deadline: the engine loops on this input")


@pytest.fixture(autouse=True)
def deadline():
    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(240)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
