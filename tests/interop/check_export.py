#!/usr/bin/env python3
"""Checks a `chronokv export --arrow` file with pyarrow, polars and DuckDB.

Usage: check_export.py <export.arrow> <expected.json>

expected.json: {"version": int, "export": "state" | "history" | "changes",
                "rows": [{"key": hex, "value": hex or null, "version": int, "time": int (us),
                          "deleted": bool}, ...]}   (in file order)

pyarrow (ipc.open_file) and polars (read_ipc, its own reader) must yield exactly the
expected rows in order; the schema metadata must name the store version and the export
kind. DuckDB runs SQL over the file's Arrow data (DuckDB has no built-in Arrow IPC file
reader; with the `nanoarrow` community extension installed it also reads the file itself
with read_arrow, which is checked when the extension loads): the rows in key/version
order, and an analyst's aggregate. Exits non-zero with a message on any mismatch.
"""

import json
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

COLUMNS = ["key", "value", "version", "time", "deleted"]


def fail(msg):
    print(f"check_export.py: {msg}", file=sys.stderr)
    sys.exit(1)


def row(key, value, version, time, deleted):
    return {
        "key": key.hex(),
        "value": None if value is None else value.hex(),
        "version": int(version),
        "time": int(time),
        "deleted": bool(deleted),
    }


def expect_equal(got, expected, how):
    if got != expected:
        for i, (g, e) in enumerate(zip(got, expected)):
            if g != e:
                fail(f"{how}: row {i}: got {g}, expected {e}")
        fail(f"{how}: {len(got)} rows, expected {len(expected)}")


def check_pyarrow(path, expected):
    with pa.memory_map(path) as source:
        reader = ipc.open_file(source)
        table = reader.read_all()
    if table.column_names != COLUMNS:
        fail(f"pyarrow: columns {table.column_names}")
    meta = table.schema.metadata or {}
    if meta.get(b"chronokv.version") != str(expected["version"]).encode():
        fail(f"pyarrow: chronokv.version metadata {meta}")
    if meta.get(b"chronokv.export") != expected["export"].encode():
        fail(f"pyarrow: chronokv.export metadata {meta}")
    d = table.to_pydict()
    times = table.column("time").cast(pa.int64()).to_pylist()
    got = [
        row(k, v, ver, t, dl)
        for k, v, ver, t, dl in zip(d["key"], d["value"], d["version"], times, d["deleted"])
    ]
    expect_equal(got, expected["rows"], "pyarrow")
    return table


def check_polars(path, expected):
    df = pl.read_ipc(path)
    if df.columns != COLUMNS:
        fail(f"polars: columns {df.columns}")
    times = df["time"].dt.epoch("us").to_list()
    got = [
        row(k, v, ver, t, dl)
        for k, v, ver, t, dl in zip(
            df["key"].to_list(),
            df["value"].to_list(),
            df["version"].to_list(),
            times,
            df["deleted"].to_list(),
        )
    ]
    expect_equal(got, expected["rows"], "polars")


DUCKDB_ROWS = """
    SELECT key, value, version, epoch_us(time) AS micros, deleted
    FROM export ORDER BY key, version DESC
"""

# What an analyst asks: per key, how many versions, deletes, and the newest version.
DUCKDB_SUMMARY = """
    SELECT key, count(*) AS versions, count(*) FILTER (WHERE deleted) AS deletes,
           max(version) AS newest
    FROM export GROUP BY key ORDER BY key
"""


def check_duckdb_on(con, expected, how):
    got = [row(bytes(k), None if v is None else bytes(v), ver, t, dl)
           for k, v, ver, t, dl in con.execute(DUCKDB_ROWS).fetchall()]
    ordered = sorted(expected["rows"], key=lambda r: (bytes.fromhex(r["key"]), -r["version"]))
    expect_equal(got, ordered, how)
    summary = {}
    for r in expected["rows"]:
        s = summary.setdefault(r["key"], [0, 0, 0])
        s[0] += 1
        s[1] += r["deleted"]
        s[2] = max(s[2], r["version"])
    want = [(bytes.fromhex(k), *summary[k]) for k in sorted(summary, key=bytes.fromhex)]
    got = [(bytes(k), n, d, m) for k, n, d, m in con.execute(DUCKDB_SUMMARY).fetchall()]
    if got != want:
        fail(f"{how}: summary {got[:5]}..., expected {want[:5]}...")


def check_duckdb(path, table, expected):
    con = duckdb.connect()
    con.register("export", table)
    check_duckdb_on(con, expected, "duckdb")
    try:
        con.execute("LOAD nanoarrow")
    except duckdb.Error:
        return
    con.unregister("export")
    con.execute(f"CREATE VIEW export AS SELECT * FROM read_arrow('{path}')")
    check_duckdb_on(con, expected, "duckdb read_arrow")


def main():
    if len(sys.argv) != 3:
        fail("usage: check_export.py <export.arrow> <expected.json>")
    path = sys.argv[1]
    with open(sys.argv[2]) as f:
        expected = json.load(f)
    table = check_pyarrow(path, expected)
    check_polars(path, expected)
    check_duckdb(path, table, expected)
    print(f"ok: {len(expected['rows'])} rows ({expected['export']}) read by pyarrow, polars, duckdb")


if __name__ == "__main__":
    main()
