"""A state-machine test of the snapshotter metadata, over both backends, against a model."""
import os
import shutil
import tempfile

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pyrunc.engine.snapshots import ACTIVE, COMMITTED, VIEW, open_snapshotter
from pyrunc.errors import AlreadyExists, FailedPrecondition, NotFound

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])


def machine(backend):
    class Snapshots(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.dir = tempfile.mkdtemp(prefix="sn-states-")
            self.sn = open_snapshotter(self.dir, backend)
            self.model = {}                       # key -> (kind, parent)

        def teardown(self):
            shutil.rmtree(self.dir, ignore_errors=True)

        def _expect(self, exc, fn, *args):
            with pytest.raises(exc):
                fn(*args)

        @rule(key=KEYS, parent=st.none() | KEYS, view=st.booleans())
        def create(self, key, parent, view):
            make = self.sn.view if view else self.sn.prepare
            if key in self.model:
                return self._expect(AlreadyExists, make, key, parent)
            if parent is not None and parent not in self.model:
                return self._expect(NotFound, make, key, parent)
            if parent is not None and self.model[parent][0] != COMMITTED:
                return self._expect(FailedPrecondition, make, key, parent)
            make(key, parent)
            self.model[key] = (VIEW if view else ACTIVE, parent)

        @rule(name=KEYS, key=KEYS)
        def commit(self, name, key):
            if key not in self.model:
                return self._expect(NotFound, self.sn.commit, name, key)
            if self.model[key][0] != ACTIVE:
                return self._expect(FailedPrecondition, self.sn.commit, name, key)
            if name in self.model:
                return self._expect(AlreadyExists, self.sn.commit, name, key)
            self.sn.commit(name, key)
            self.model[name] = (COMMITTED, self.model.pop(key)[1])

        @rule(key=KEYS)
        def remove(self, key):
            if key not in self.model:
                return self._expect(NotFound, self.sn.remove, key)
            if any(parent == key for _, parent in self.model.values()):
                return self._expect(FailedPrecondition, self.sn.remove, key)
            self.sn.remove(key)
            del self.model[key]

        @invariant()
        def agrees(self):
            got = {i.name: (i.kind, i.parent) for i in self.sn.walk()}
            assert got == self.model
            assert len(os.listdir(os.path.join(self.sn.root, "snapshots"))) == len(self.model)

    return Snapshots


@pytest.mark.parametrize("backend", ["overlayfs", "native"])
def test_snapshot_state_machine(backend):
    case = machine(backend).TestCase
    case.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
    case("runTest").runTest()
