"""The container status machine, checked with hypothesis against runc's rules on real containers.

Random sequences of start, kill, pause, resume and delete on one container; after every step the
status the runtime reports must be the model's, and every refused operation must be refused with
the model's error category.
"""
import os
import signal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pyrunc import errors
from pyrunc.libcontainer.container import Factory
from support import unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")


class ContainerMachine(RuleBasedStateMachine):
    """Model: status in created/running/paused/stopped/deleted; ``before_pause`` remembers
    what resume returns to."""

    root = bundle = None

    def __init__(self):
        super().__init__()
        self.factory = Factory(root=self.root)
        self.cid = unique_id("sm")
        self.container = self.factory.create(self.cid, self.bundle)
        self.model = "created"
        self.before_pause = None

    def expect(self, operation, allowed, category=errors.FailedPrecondition):
        if self.model == "deleted":
            with pytest.raises(errors.NotFound):
                operation(self.factory.load(self.cid))
            return False
        if self.model in allowed:
            operation(self.factory.load(self.cid))
            return True
        with pytest.raises(category):
            operation(self.factory.load(self.cid))
        return False

    @rule()
    def start(self):
        if self.expect(lambda c: c.start(), ("created",)):
            self.model = "running"

    @precondition(lambda self: self.model != "paused")   # a frozen init dies only on thaw
    @rule()
    def kill(self):
        if self.expect(lambda c: c.signal(signal.SIGKILL), ("created", "running")):
            self.container.wait()
            self.model = "stopped"

    @rule()
    def pause(self):
        previous = self.model
        if self.expect(lambda c: c.pause(), ("created", "running")):
            self.before_pause, self.model = previous, "paused"

    @rule()
    def resume(self):
        if self.expect(lambda c: c.resume(), ("paused",)):
            self.model = self.before_pause

    @rule(force=st.booleans())
    def delete(self, force):
        allowed = ("created", "stopped", "running", "paused") if force else ("created", "stopped")
        if self.expect(lambda c: c.destroy(force=force), allowed):
            self.model = "deleted"

    @invariant()
    def status_is_the_models(self):
        if self.model == "deleted":
            assert not os.path.exists(os.path.join(self.root, self.cid))
            with pytest.raises(errors.NotFound):
                self.factory.load(self.cid)
            return
        state = self.factory.load(self.cid).state()
        assert state["status"] == self.model
        assert (state["pid"] == 0) == (self.model == "stopped")

    def teardown(self):
        if self.model != "deleted":
            self.factory.load(self.cid).destroy(force=True)


@pytest.fixture
def machine_setup(tmp_path, make_bundle):
    ContainerMachine.root = str(tmp_path / "state")
    ContainerMachine.bundle = make_bundle(("sleep", "30"))
    yield
    ContainerMachine.root = ContainerMachine.bundle = None


def test_status_machine(machine_setup):
    from hypothesis.stateful import run_state_machine_as_test
    run_state_machine_as_test(ContainerMachine, settings=settings(
        max_examples=25, stateful_step_count=10, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
