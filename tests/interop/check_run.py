#!/usr/bin/env python3
"""Checks that a chronokv run file is a standard Arrow IPC file.

Usage: check_run.py <run-file> <expected.json>

expected.json: {"blocks": N, "rows": [{"key": hex, "version": int, "kind": int, "value": hex, "time": int}, ...]}

The file is read twice, with pyarrow.ipc.open_file (footer, random access) and with
pyarrow.ipc.open_stream on the bytes after the 8-byte magic (the embedded stream, which ends
at the end-of-stream marker before chronokv's private region). Both must yield exactly the
expected rows, with the chronokv schema. Exits non-zero with a message on any mismatch.
"""

import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc

EXPECTED_SCHEMA = pa.schema(
    [
        pa.field("key", pa.binary(), nullable=False),
        pa.field("version", pa.uint64(), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("value", pa.binary(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def fail(msg):
    print(f"check_run.py: {msg}", file=sys.stderr)
    sys.exit(1)


def check_schema(schema, how):
    if not schema.equals(EXPECTED_SCHEMA, check_metadata=False):
        fail(f"{how}: schema mismatch:\n{schema}")
    meta = schema.metadata or {}
    if meta.get(b"chronokv.format") != b"2":
        fail(f"{how}: chronokv.format metadata missing: {meta}")
    if meta.get(b"chronokv.sort") != b"key ASC, version DESC":
        fail(f"{how}: chronokv.sort metadata missing: {meta}")


def rows_of(batches, how):
    rows = []
    for batch in batches:
        batch.validate(full=True)
        times = batch.column("time").cast(pa.int64()).to_pylist()
        for r, t in zip(batch.to_pylist(), times):
            rows.append(
                {
                    "key": r["key"].hex(),
                    "version": r["version"],
                    "kind": r["kind"],
                    "value": r["value"].hex(),
                    "time": t,
                }
            )
    return rows


def main():
    if len(sys.argv) != 3:
        fail("usage: check_run.py <run-file> <expected.json>")
    data = open(sys.argv[1], "rb").read()
    expected = json.load(open(sys.argv[2]))

    if data[:8] != b"ARROW1\0\0":
        fail("file does not start with exactly ARROW1\\0\\0")

    reader = ipc.open_file(pa.py_buffer(data))
    check_schema(reader.schema, "open_file")
    if reader.num_record_batches != expected["blocks"]:
        fail(f"open_file: {reader.num_record_batches} batches, expected {expected['blocks']}")
    file_rows = rows_of((reader.get_batch(i) for i in range(reader.num_record_batches)), "open_file")
    if file_rows != expected["rows"]:
        fail(f"open_file: rows differ ({len(file_rows)} read, {len(expected['rows'])} expected)")
    table = reader.read_all()
    if table.num_rows != len(expected["rows"]):
        fail("open_file: read_all row count differs")

    stream = ipc.open_stream(pa.py_buffer(data[8:]))
    check_schema(stream.schema, "open_stream")
    batches = list(stream)
    if len(batches) != expected["blocks"]:
        fail(f"open_stream: {len(batches)} batches, expected {expected['blocks']}")
    if rows_of(batches, "open_stream") != expected["rows"]:
        fail("open_stream: rows differ")

    print(f"ok: {len(file_rows)} rows in {len(batches)} blocks, pyarrow {pa.__version__}")


if __name__ == "__main__":
    main()
