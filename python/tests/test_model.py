"""A stateful model test: puts, deletes, batches, snapshots, transactions and reopens,
checked after every step against a dict (and, for snapshots, the dict as it was)."""

from datetime import timedelta
import shutil
import tempfile

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import chronokv

KEYS = st.binary(min_size=0, max_size=6).map(lambda b: b"k" + b)
VALUES = st.binary(max_size=40)
OPTIONS = {"memtable_size": 8192, "history_retention": timedelta(days=1)}


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="chronokv-model-")
        self.db = chronokv.Db(self.dir, **OPTIONS)
        self.model = {}
        self.versions = {}  # version -> the model right after it
        self.snapshots = []  # (snapshot, the model it must read)

    def teardown(self):
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def committed(self, version):
        self.versions[version] = dict(self.model)

    @rule(key=KEYS, value=VALUES)
    def put(self, key, value):
        self.model[key] = value
        self.committed(self.db.put(key, value))

    @rule(key=KEYS)
    def delete(self, key):
        self.model.pop(key, None)
        self.committed(self.db.delete(key))

    @rule(ops=st.lists(st.tuples(KEYS, st.none() | VALUES), min_size=1, max_size=8))
    def batch(self, ops):
        batch = chronokv.WriteBatch()
        for key, value in ops:
            if value is None:
                batch.delete(key)
                self.model.pop(key, None)
            else:
                batch.put(key, value)
                self.model[key] = value
        self.committed(self.db.write(batch))

    @rule(key=KEYS, value=VALUES)
    def transaction(self, key, value):
        with self.db.transaction() as tx:
            old = tx.get(key)
            tx.put(key, (old or b"") + value)
        self.model[key] = self.model.get(key, b"") + value
        self.committed(self.db.latest_version)

    @rule()
    def take_snapshot(self):
        self.snapshots.append((self.db.snapshot(), dict(self.model)))

    @rule()
    def flush(self):
        self.db.flush()

    @rule()
    def reopen(self):
        # Live snapshots hold the store's lock: release them first.
        for snap, _ in self.snapshots:
            snap.release()
        self.snapshots.clear()
        self.db.close()
        self.db = chronokv.Db(self.dir, **OPTIONS)

    @precondition(lambda self: self.versions)
    @rule(data=st.data())
    def time_travel(self, data):
        version = data.draw(st.sampled_from(sorted(self.versions)))
        snap = self.db.snapshot_at(version)
        assert dict(snap.scan()) == self.versions[version]

    @rule(key=KEYS)
    def get(self, key):
        assert self.db.get(key) == self.model.get(key)

    @invariant()
    def scan_matches(self):
        assert list(self.db.scan()) == sorted(self.model.items())

    @invariant()
    def snapshots_hold(self):
        for snap, seen in self.snapshots[-3:]:
            assert list(snap.scan()) == sorted(seen.items())


StoreModel.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestStoreModel = StoreModel.TestCase
