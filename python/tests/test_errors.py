"""Engine errors reach Python as the exception hierarchy, with the engine's messages."""

from datetime import datetime, timedelta, timezone
import os

import pyarrow as pa
import pytest

import chronokv


def test_hierarchy():
    for cls in (chronokv.IoError, chronokv.Corruption, chronokv.InvalidArgument,
                chronokv.Locked, chronokv.Poisoned, chronokv.Closed, chronokv.ReadOnly,
                chronokv.VersionNotRetained, chronokv.Conflict):
        assert issubclass(cls, chronokv.ChronoError)
    assert issubclass(chronokv.TimeNotRetained, chronokv.VersionNotRetained)
    assert chronokv.Conflict.retryable and not chronokv.Corruption.retryable


def test_locked(db, path):
    with pytest.raises(chronokv.Locked, match="locked by another open Db"):
        chronokv.Db(path)


def test_version_not_retained_carries_the_oldest_version(path):
    with chronokv.Db(path, memtable_size=4096) as db:  # no history window
        first = db.put("k", "v0")
        for i in range(1, 200):
            db.put("k", f"v{i}")
        db.flush()
        db.compact_range()
        with pytest.raises(chronokv.VersionNotRetained, match="no longer retained") as err:
            db.snapshot_at(first)
        assert err.value.requested == first and err.value.oldest > first
        with pytest.raises(chronokv.TimeNotRetained) as err:
            db.snapshot_as_of(datetime(2000, 1, 1, tzinfo=timezone.utc))
        assert err.value.oldest >= first
        with pytest.raises(chronokv.VersionNotRetained):
            list(db.changes(first))


def test_invalid_arguments(db):
    with pytest.raises(chronokv.InvalidArgument, match="invalid argument"):
        db.put(b"k" * (64 * 1024 + 1), b"v")
    db.put("still", "writable")  # a caller's mistake does not poison the store
    with pytest.raises(ValueError, match="durability"):
        db.put("k", "v", durability="sometimes")
    with pytest.raises(ValueError):
        db.transaction(isolation="none")


def test_bad_options(path):
    with pytest.raises(TypeError, match='unknown chronokv option "memtable"'):
        chronokv.Db(path, memtable=1)
    with pytest.raises(ValueError, match="compression"):
        chronokv.Db(path, compression="lz4")
    with pytest.raises(chronokv.InvalidArgument, match="memtable_size"):
        chronokv.Db(path, memtable_size=0)
    with pytest.raises(chronokv.InvalidArgument):
        chronokv.Db.open_read_only(path / "nothing-here")


def test_read_only_refuses_writes(db, path):
    db.put("a", "1")
    reader = chronokv.Db.open_read_only(path)
    with pytest.raises(chronokv.ReadOnly, match="read-only"):
        reader.delete("a")
    with pytest.raises(chronokv.ReadOnly):
        with reader.transaction() as tx:
            tx.put("b", "2")


def test_corruption_names_the_file_and_offset(path):
    with chronokv.Db(path, memtable_size=1 << 20, compaction_threads=0) as db:
        for i in range(5000):
            db.put(f"key{i:06}", "x" * 50)
        db.flush()
    runs = sorted(p for p in path.iterdir() if p.suffix == ".arrow")
    run = runs[-1]
    size = run.stat().st_size
    with open(run, "r+b") as f:  # one bit flipped in the middle of the data blocks
        f.seek(size // 3)
        byte = f.read(1)
        f.seek(size // 3)
        f.write(bytes([byte[0] ^ 0x10]))
    with chronokv.Db(path, compaction_threads=0) as db:
        with pytest.raises(chronokv.Corruption) as err:
            list(db.scan())
        assert err.value.file == str(run) and 0 < err.value.offset < size
        assert "checksum" in str(err.value)
        # Inside an Arrow stream the error is pyarrow's, with the engine's message.
        with pytest.raises(pa.ArrowException, match="corruption in .* checksum"):
            db.to_arrow().read_all()
        report = db.verify()
        assert not report["ok"] and report["problems"][0]["kind"] == "run-corrupt"
