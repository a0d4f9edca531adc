"""The task lifecycle as a state machine: random sequences of requests against a real container,
checked against a model of which requests are allowed in which state and what they lead to."""
import signal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from pyrunc import errors

from .conftest import new_id

ABSENT, CREATED, RUNNING, PAUSED, STOPPED = "absent", "created", "running", "paused", "stopped"


def test_lifecycle_follows_the_model(manager, bundle):
    path = bundle(["sleep", "1000"])

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.cid = new_id("sm")
            self.model = ABSENT

        def expect(self, allowed, action, error):
            """Run ``action`` when the model allows it, else check it raises ``error``."""
            if self.model == ABSENT:
                with pytest.raises(errors.NotFound):
                    action()
            elif self.model in allowed:
                action()
                return True
            else:
                with pytest.raises(error):
                    action()
            return False

        def task(self):
            return manager.get(self.cid)

        @rule()
        def create(self):
            if self.model == ABSENT:
                manager.create(self.cid, path)
                self.model = CREATED
            else:
                with pytest.raises(errors.AlreadyExists):
                    manager.create(self.cid, path)

        @rule()
        def start(self):
            if self.expect({CREATED}, lambda: self.task().start(), errors.FailedPrecondition):
                self.model = RUNNING

        @rule()
        def pause(self):
            if self.expect({RUNNING}, lambda: self.task().pause(), errors.FailedPrecondition):
                self.model = PAUSED

        @rule()
        def resume(self):
            if self.expect({PAUSED}, lambda: self.task().resume(), errors.FailedPrecondition):
                self.model = RUNNING

        @rule()
        def kill(self):
            def action():
                task = self.task()
                task.kill(signal.SIGKILL)
                assert task.wait(timeout=20).status == 128 + signal.SIGKILL
            if self.model == PAUSED:
                return          # the signal would wait for a resume: not a step of the model
            if self.expect({CREATED, RUNNING}, action, errors.FailedPrecondition):
                self.model = STOPPED

        @rule()
        def delete(self):
            if self.expect({CREATED, STOPPED}, lambda: self.task().delete(),
                           errors.FailedPrecondition):
                self.model = ABSENT

        @rule()
        def force_delete(self):
            if self.expect({CREATED, RUNNING, PAUSED, STOPPED},
                           lambda: self.task().delete(force=True), errors.FailedPrecondition):
                self.model = ABSENT

        @invariant()
        def state_matches(self):
            if self.model == ABSENT:
                assert self.cid not in [t.id for t in manager.list()]
            else:
                st = self.task().state()
                assert st.status == self.model
                assert (st.exit_status is not None) == (self.model == STOPPED)

        def teardown(self):
            if self.model != ABSENT:
                self.task().delete(force=True)

    run_state_machine_as_test(Lifecycle, settings=settings(
        max_examples=30, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
