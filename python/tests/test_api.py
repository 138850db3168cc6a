"""The API, call by call, against what a Python dict says the answers are."""

from datetime import datetime, timedelta, timezone
import os
import time

import pytest

import chronokv
from chronokv import _native
from conftest import SMALL


def fill(db, n, prefix="k"):
    expected = {}
    for i in range(n):
        key, value = f"{prefix}{i:05}".encode(), f"value-{i}".encode() * (i % 3 + 1)
        db.put(key, value)
        expected[key] = value
    return expected


def test_put_get_delete_with_bytes_and_str(db):
    v1 = db.put(b"a", b"1")
    v2 = db.put("b", "two")
    assert v2 > v1 and db.latest_version == v2
    assert db.get("a") == b"1" and db.get(b"b") == b"two"
    assert db.get(bytearray(b"a")) == b"1"
    assert db.put("empty", b"") and db.get("empty") == b""  # an empty value is a value
    db.delete("a")
    assert db.get("a") is None and db.get("missing") is None


def test_keys_must_be_bytes_or_str(db):
    with pytest.raises(TypeError, match="bytes, bytearray or str"):
        db.put(1, b"x")


def test_write_batch_is_atomic_and_reusable(db):
    batch = chronokv.WriteBatch().put("x", "1").put("y", "2").delete("x")
    assert len(batch) == 3
    last = db.write(batch, durability="sync")
    assert db.get("x") is None and db.get("y") == b"2"
    assert [c.version for c in db.changes(last - 2)] == [last - 2, last - 1, last]
    assert len(batch) == 3  # written again, the same entries
    db.write(batch)
    assert db.latest_version == last + 3


def test_scan_ranges_prefix_and_reverse_match_a_dict(db):
    expected = fill(db, 700)
    expected.update(fill(db, 50, prefix="other"))
    db.flush()
    for k in list(expected)[::7]:
        db.delete(k)
        del expected[k]
    keys = sorted(expected)
    assert list(db.scan()) == [(k, expected[k]) for k in keys]
    assert list(db.scan(reverse=True)) == [(k, expected[k]) for k in reversed(keys)]
    lo, hi = b"k00100", b"k00250"
    want = [(k, expected[k]) for k in keys if lo <= k < hi]
    assert list(db.scan(lo, hi)) == want
    assert list(db.scan("k00100", "k00250", reverse=True)) == want[::-1]
    assert [k for k, _ in db.scan(prefix="other")] == [k for k in keys if k.startswith(b"other")]
    assert list(db.scan(b"z")) == []
    with pytest.raises(ValueError):
        db.scan("a", prefix="k")


def test_scan_reads_the_state_when_it_began(db):
    fill(db, 600)
    it = db.scan()
    first = next(it)
    db.put("k00000", "changed")
    db.put("k99999", "new")
    rest = list(it)
    assert first == (b"k00000", b"value-0")
    assert len(rest) == 599 and rest[-1][0] == b"k00599"


def test_snapshots_repeat_their_reads(db):
    db.put("color", "red")
    with db.snapshot() as snap:
        db.put("color", "blue")
        db.put("size", "xl")
        assert snap.get("color") == b"red" and snap.get("size") is None
        assert list(snap.scan()) == [(b"color", b"red")]
        assert snap.version == db.latest_version - 2
    with pytest.raises(chronokv.Closed):
        snap.get("color")


def test_snapshot_at_and_as_of(db):
    v1 = db.put("color", "red")
    time.sleep(0.01)
    noon = datetime.now(timezone.utc)
    time.sleep(0.01)
    db.put("color", "blue")
    db.flush()
    db.compact_range()
    assert db.snapshot_at(v1).get("color") == b"red"
    assert db.snapshot_as_of(noon).get("color") == b"red"
    assert db.snapshot_as_of(noon.timestamp()).get("color") == b"red"
    naive_local = datetime.fromtimestamp(noon.timestamp())
    assert db.snapshot_as_of(naive_local).get("color") == b"red"
    assert db.snapshot_as_of(datetime.now(timezone.utc)).get("color") == b"blue"
    snap = db.snapshot_at(v1)
    assert abs(snap.time - noon) < timedelta(seconds=1) and snap.time <= noon


def test_history_and_changes(db):
    versions = [db.put("k", f"v{i}") for i in range(3)]
    versions.append(db.delete("k"))
    other = db.put("other", "x")
    history = db.history("k")
    assert [h.version for h in history] == versions[::-1]
    assert [h.value for h in history] == [None, b"v2", b"v1", b"v0"]
    assert history[0].deleted and not history[1].deleted
    assert all(h.time.tzinfo is not None for h in history)
    changes = list(db.changes(versions[1]))
    assert [(c.version, c.key, c.value) for c in changes] == [
        (versions[1], b"k", b"v1"),
        (versions[2], b"k", b"v2"),
        (versions[3], b"k", None),
        (other, b"other", b"x"),
    ]
    assert [c.version for c in db.changes(versions[1], versions[3])] == versions[1:3]


def test_transaction_commits_and_rolls_back(db):
    db.put("acct:a", "100")
    with db.transaction() as tx:
        a = int(tx.get("acct:a"))
        tx.put("acct:a", str(a - 10))
        tx.put("acct:b", "10")
        assert tx.get("acct:b") == b"10" and db.get("acct:b") is None
        assert list(tx.scan(prefix="acct:")) == [(b"acct:a", b"90"), (b"acct:b", b"10")]
    assert db.get("acct:a") == b"90" and db.get("acct:b") == b"10"
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.put("acct:a", "0")
            raise RuntimeError("abort")
    assert db.get("acct:a") == b"90"
    with pytest.raises(chronokv.Closed):
        tx.put("x", "y")


def test_conflicting_transaction_raises_conflict_and_applies_nothing(db):
    db.put("n", "0")
    tx = db.transaction()
    tx.put("n", str(int(tx.get("n")) + 1))
    db.put("n", "5")  # a concurrent commit of what tx read
    with pytest.raises(chronokv.Conflict) as err:
        tx.commit()
    assert err.value.retryable and "conflict" in str(err.value)
    assert db.get("n") == b"5"


def test_transact_retries_on_conflict(db):
    db.put("n", "0")
    calls = []

    def increment(tx):
        calls.append(1)
        n = int(tx.get("n"))
        if len(calls) == 1:
            db.put("n", "10")  # make the first attempt conflict
        tx.put("n", str(n + 1))
        return n + 1

    assert db.transact(increment) == 11
    assert len(calls) == 2 and db.get("n") == b"11"
    calls.clear()
    with pytest.raises(chronokv.Conflict):
        db.transact(increment, retries=0)


def test_checkpoint_opens_with_the_data(db, tmp_path):
    expected = fill(db, 300)
    info = db.checkpoint(tmp_path / "cp")
    assert info["version"] == db.latest_version
    db.put("after", "checkpoint")
    with chronokv.Db(tmp_path / "cp") as copy:
        assert dict(copy.scan()) == expected


def test_backups_create_list_verify_restore(db, tmp_path):
    expected = fill(db, 300)
    backups = chronokv.BackupEngine(tmp_path / "backups")
    first = backups.create(db)
    db.put("later", "x")
    second = backups.create(db)
    assert [b["id"] for b in backups.list()] == [first["id"], second["id"]]
    assert backups.verify(first["id"])["ok"]
    backups.restore(first["id"], tmp_path / "restored")
    with chronokv.Db(tmp_path / "restored") as restored:
        assert dict(restored.scan()) == expected
    assert backups.delete(first["id"]) >= 0
    assert [b["id"] for b in backups.list()] == [second["id"]]


def test_verify_and_stats(db):
    fill(db, 2000)
    db.flush()
    report = db.verify()
    assert report["ok"] and report["problems"] == [] and report["entries"] >= 2000
    stats = db.stats()
    assert stats["strategy"] == "leveled" and stats["flushes"] >= 1
    assert sum(level["entries"] for level in stats["levels"]) >= 2000


def test_read_only_handle_refreshes(path):
    with chronokv.Db(path, **SMALL) as writer:
        writer.put("a", "1")
        reader = chronokv.Db.open_read_only(path)
        assert reader.read_only and reader.get("a") == b"1"
        writer.put("b", "2")
        assert reader.get("b") is None
        assert reader.refresh() and reader.get("b") == b"2"
        assert not reader.refresh()
        with pytest.raises(chronokv.ReadOnly):
            reader.put("c", "3")
        reader.close()


def test_close_then_calls_raise_closed(path):
    db = chronokv.Db(path)
    db.put("a", "1")
    snap = db.snapshot()
    db.close()
    db.close()  # harmless
    assert db.closed
    with pytest.raises(chronokv.Closed):
        db.get("a")
    # A live snapshot holds the engine's shared state, and with it the directory's lock.
    assert snap.get("a") == b"1"
    with pytest.raises(chronokv.Locked):
        chronokv.Db(path)
    del snap
    with chronokv.Db(path) as again:
        assert again.get("a") == b"1"


def test_retention_contract(path):
    with chronokv.Db(path, history_retention=timedelta(hours=1), history_versions_per_key=2) as db:
        assert db.history_retention() == {"window": timedelta(hours=1), "versions_per_key": 2}
        old = db.set_history_retention(timedelta(minutes=5), 1)
        assert old["window"] == timedelta(hours=1)
    with chronokv.Db(path) as db:
        assert db.history_retention() == {"window": timedelta(minutes=5), "versions_per_key": 1}


def test_restore_to_a_version(db):
    v = db.put("a", "1")
    db.put("a", "2")
    db.put("b", "3")
    db.restore_to(v)
    assert dict(db.scan()) == {b"a": b"1"}
    assert db.history("a")[0].value == b"1" and len(db.history("a")) == 3


@pytest.mark.skipif(
    os.environ.get("CHRONOKV_EXPECT_INVARIANTS") != "1",
    reason="only builds made by tests/python_package.rs promise the invariant checks",
)
def test_the_build_checks_the_engine_invariants():
    assert _native._invariants_checked


def test_transaction_scans_stream_in_chunks_with_own_writes(db):
    expected = fill(db, 700)
    with db.transaction() as tx:
        tx.put("k00003", "mine")
        tx.delete("k00500")
        tx.put("k00700", "new")
        expected.update({b"k00003": b"mine", b"k00700": b"new"})
        del expected[b"k00500"]
        want = sorted(expected.items())
        assert list(tx.scan()) == want  # more than one chunk of 256
        assert list(tx.scan(reverse=True)) == want[::-1]
        assert list(tx.scan("k00250", "k00520")) == [p for p in want if b"k00250" <= p[0] < b"k00520"]


def test_a_transaction_scan_is_tracked_for_phantoms(db):
    fill(db, 300)
    tx = db.transaction()
    assert sum(1 for _ in tx.scan(prefix="k")) == 300
    db.put("k00150x", "a phantom in the scanned range")
    tx.put("summary", "300 keys")
    with pytest.raises(chronokv.Conflict):
        tx.commit()
    tx = db.transaction(isolation="snapshot")  # snapshot isolation allows it
    assert sum(1 for _ in tx.scan(prefix="k")) == 301
    db.put("k00151x", "another")
    tx.put("summary", "301 keys")
    tx.commit()
