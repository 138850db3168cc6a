"""Arrow streams out, checked row by row with pyarrow, polars, pandas and DuckDB against
the writes that made them."""

from datetime import timezone

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import chronokv

SCHEMA = ["key", "value", "version", "time", "deleted"]


@pytest.fixture
def written(db):
    """Three rounds of writes; returns {key: (value, version)} after each round."""
    rounds, state = [], {}
    for r in range(3):
        for i in range(0, 400, r + 1):
            key = f"user:{i:04}".encode()
            if (i + r) % 5 == 0 and key in state:
                db.delete(key)
                del state[key]
            else:
                value = f"r{r}-{i}".encode() + b"\x00\xff"
                state[key] = (value, db.put(key, value))
        db.put(b"\x00raw\xff", f"round {r}")
        state[b"\x00raw\xff"] = (f"round {r}".encode(), db.latest_version)
        rounds.append((db.latest_version, dict(state)))
        db.flush()
    return rounds


def rows_of(table):
    return [(r["key"], r["value"], r["version"]) for r in table.to_pylist()]


def expected_rows(state, prefix=b""):
    return [(k, v, ver) for k, (v, ver) in sorted(state.items()) if k.startswith(prefix)]


def test_to_arrow_streams_each_state_row_by_row(db, written):
    for version, state in written:
        reader = db.snapshot_at(version).to_arrow(batch_size=97)
        assert isinstance(reader, pa.RecordBatchReader)
        assert reader.schema.names == SCHEMA
        batches = list(reader)
        assert all(0 < b.num_rows <= 97 for b in batches)
        table = pa.Table.from_batches(batches, schema=reader.schema)
        assert rows_of(table) == expected_rows(state)
        assert not any(table.column("deleted").to_pylist())
        assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")


def test_to_arrow_prefix_and_range(db, written):
    version, state = written[-1]
    snap = db.snapshot_at(version)
    table = snap.to_arrow(prefix="user:01").read_all()
    assert rows_of(table) == expected_rows(state, b"user:01")
    table = snap.to_arrow("user:0100", "user:0200").read_all()
    want = [r for r in expected_rows(state) if b"user:0100" <= r[0] < b"user:0200"]
    assert rows_of(table) == want


def test_the_stream_holds_its_snapshot(db, written):
    version, state = written[-1]
    reader = db.to_arrow(batch_size=50)
    first = reader.read_next_batch()
    for i in range(400):
        db.put(f"user:{i:04}", "overwritten")
    db.flush()
    db.compact_range()
    rest = reader.read_all()
    rows = rows_of(pa.Table.from_batches([first])) + rows_of(rest)
    assert rows == expected_rows(state)


def test_values_are_not_copied_into_pyarrow_memory(db):
    for i in range(2000):
        db.put(f"k{i:05}", b"v" * 1000)
    before = pa.total_allocated_bytes()
    table = db.to_arrow().read_all()
    assert table.num_rows == 2000
    # The 2 MB of values live in buffers the engine allocated and exported.
    assert pa.total_allocated_bytes() - before < 100_000


def test_polars_pandas_and_duckdb_read_the_same_rows(db, written):
    version, state = written[1]
    snap = db.snapshot_at(version)
    want = expected_rows(state)
    frame = snap.to_polars()
    assert isinstance(frame, pl.DataFrame)
    assert list(zip(frame["key"], frame["value"], frame["version"])) == want
    assert frame.filter(pl.col("key").bin.starts_with(b"user:")).height == len(want) - 1
    pandas = snap.to_pandas()
    assert list(zip(pandas["key"], pandas["value"], pandas["version"])) == want
    reader = snap.to_arrow(batch_size=64)
    got = duckdb.sql("select key, value, version from reader order by key").fetchall()
    assert got == want
    with pytest.raises(duckdb.Error, match="consumed"):  # a stream is read once
        duckdb.sql("select count(*) from reader").fetchall()


def test_history_arrow_for_a_key_and_a_prefix(db):
    versions = [db.put("k", f"v{i}") for i in range(3)] + [db.delete("k")]
    db.put("kz", "other")
    table = db.history_arrow("k").read_all()
    assert table.column("version").to_pylist() == versions[::-1]
    assert table.column("value").to_pylist() == [None, b"v2", b"v1", b"v0"]
    assert table.column("deleted").to_pylist() == [True, False, False, False]
    history = db.history("k")
    times = [t.replace(tzinfo=timezone.utc) for t in table.column("time").to_pylist()]
    assert times == [h.time for h in history]
    table = db.history_arrow(prefix="k", batch_size=2).read_all()
    assert table.column("key").to_pylist() == [b"k"] * 4 + [b"kz"]


def test_changes_arrow_matches_the_feed(db, written):
    since = written[0][0] + 1
    feed = [(c.key, c.value, c.version, c.deleted) for c in db.changes(since)]
    table = db.changes_arrow(since, batch_size=33).read_all()
    got = [(r["key"], r["value"], r["version"], r["deleted"]) for r in table.to_pylist()]
    assert got == feed and len(feed) > 100
    assert table.column("version").to_pylist() == sorted(table.column("version").to_pylist())
    stop = since + 10
    assert db.changes_arrow(since, stop).read_all().num_rows == 10


def test_training_batches_are_reproducible_and_cover_the_range(db, written):
    version, state = written[-1]

    def run(seed, window=128):
        reader = db.snapshot_at(version).training_batches(
            prefix="user:", batch_size=32, seed=seed, shuffle_window=window
        )
        return [b.column("key").to_pylist() for b in reader]

    first = run(7)
    db.put("user:0001", "a later write")  # the past does not change
    db.compact_range()
    assert run(7) == first
    assert all(len(b) == 32 for b in first[:-1])
    keys = [k for b in first for k in b]
    assert sorted(keys) == [k for k in sorted(state) if k.startswith(b"user:")]
    assert keys != sorted(keys)
    assert run(8) != first
    # A window is a key-ordered slice of the range, permuted: windows stay in order.
    window_keys = [sorted(keys[i : i + 128]) for i in range(0, len(keys), 128)]
    assert [k for w in window_keys for k in w] == sorted(keys)
    # Without a seed: key order.
    plain = [k for b in db.snapshot_at(version).training_batches(prefix="user:") for k in b.column("key").to_pylist()]
    assert plain == sorted(keys)


def test_batch_size_must_be_positive(db):
    with pytest.raises(ValueError):
        db.to_arrow(batch_size=0)
