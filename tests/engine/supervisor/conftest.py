"""Fixtures of the supervisor's tests: a Supervisor over the engine fixture's root, stopped at
teardown (before the engine fixture removes the containers)."""
import time

import pytest

from pyrunc.engine.supervisor import Supervisor


@pytest.fixture
def supervisor(engine):
    sup = Supervisor(engine)
    yield sup
    sup.stop()


def _until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns a true value (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached in %ss" % (what, timeout))
        time.sleep(interval)


@pytest.fixture
def until():
    """until(predicate, timeout=30, interval=0.05, what=...) -> the predicate's true value."""
    return _until
