#!/usr/bin/env python3
"""Throughput of the Python package: put, get, scan and batched writes from Python, and
Arrow export (Snapshot.to_arrow) beside pyarrow reading the store's run files directly
(pyarrow.ipc.open_file) and, if the deltalake package is installed, beside deltalake
reading the same rows from a Delta table.

Each figure is the median of --repeats runs. Prints a Markdown table.

    python python/bench/bench.py [--rows 500000] [--repeats 3] [--dir DIR]
"""

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time

import pyarrow as pa
import pyarrow.ipc as ipc

import chronokv

KEY_BYTES, VALUE_BYTES = 16, 100


def key(i):
    return b"key%013d" % i


def value(i, rng):
    return rng.randbytes(VALUE_BYTES)


def median_rate(repeats, count, run):
    """count / seconds of run(): every run's rate, the median first."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - start))
    return [statistics.median(rates)] + rates


def human(rate):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f}{unit}"
    return f"{rate:.0f}"


def cell(rates):
    """The median, then each run in brackets."""
    median, *runs = rates
    return f"{human(median)} ({', '.join(human(r) for r in runs)})"


def load(db, rows):
    rng = random.Random(1)
    for start in range(0, rows, 1000):
        batch = chronokv.WriteBatch()
        for i in range(start, min(start + 1000, rows)):
            batch.put(key(i), value(i, rng))
        db.write(batch)


def measure_ops(work, rows, repeats):
    """Single-key puts, batched writes, random gets and a full scan."""
    out = {}
    n = min(rows, 200_000)
    rng = random.Random(2)
    payload = rng.randbytes(VALUE_BYTES)
    with chronokv.Db(os.path.join(work, "puts")) as db:
        counter = iter(range(10**9))
        out["put (one key a call)"] = median_rate(
            repeats, n, lambda: [db.put(key(next(counter)), payload) for _ in range(n)])

        def batches():
            for _ in range(n // 1000):
                b = chronokv.WriteBatch()
                for _ in range(1000):
                    b.put(key(next(counter)), payload)
                db.write(b)
        out["write (batches of 1000)"] = median_rate(repeats, n, batches)
    with chronokv.Db(os.path.join(work, "store")) as db:
        keys = [key(rng.randrange(rows)) for _ in range(n)]
        out["get (random, present)"] = median_rate(repeats, n, lambda: [db.get(k) for k in keys])
        out["scan (full, pairs)"] = median_rate(repeats, rows, lambda: sum(1 for _ in db.scan()))
    return out


def run_files(path):
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".arrow"))


def read_runs(path):
    rows = 0
    for f in run_files(path):
        with pa.memory_map(f) as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                rows += reader.get_batch(i).num_rows
    return rows


def delta_table(work, path):
    try:
        import deltalake
    except ImportError:
        return None
    with chronokv.Db(path) as db:
        table = db.to_arrow().read_all().select(["key", "value"])
    target = os.path.join(work, "delta")
    deltalake.write_deltalake(target, table)
    return target


def read_delta(target):
    import deltalake

    return deltalake.DeltaTable(target).to_pyarrow_table().num_rows


def measure_export(work, rows, repeats):
    """Rows/s and MB/s (key and value bytes) of reading every row into Arrow."""
    path = os.path.join(work, "store")
    with chronokv.Db(path) as db:
        db.compact_range()
        db.wait_for_compactions()
    mb = rows * (KEY_BYTES + VALUE_BYTES) / 1e6
    out = {}
    with chronokv.Db(path) as db:
        def to_arrow():
            assert sum(b.num_rows for b in db.to_arrow(batch_size=65536)) == rows
        out["chronokv Snapshot.to_arrow"] = median_rate(repeats, rows, to_arrow)
        out["chronokv to_arrow().read_all()"] = median_rate(
            repeats, rows, lambda: db.to_arrow().read_all())
    # The runs hold every version (one here) plus the engine's columns; read as they are.
    def runs():
        assert read_runs(path) == rows  # one version a key: the same rows
    out["pyarrow.ipc.open_file on the runs"] = median_rate(repeats, rows, runs)
    target = delta_table(work, path)
    if target:
        def delta():
            assert read_delta(target) == rows
        out["deltalake DeltaTable.to_pyarrow_table"] = median_rate(repeats, rows, delta)
    return out, mb / rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="chronokv-pybench-")
    try:
        with chronokv.Db(os.path.join(work, "store")) as db:
            load(db, args.rows)
        ops = measure_ops(work, args.rows, args.repeats)
        export, mb_per_row = measure_export(work, args.rows, args.repeats)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.rows} rows of {KEY_BYTES} B keys and {VALUE_BYTES} B values; "
          f"median of {args.repeats}\n")
    print("| operation | ops/s |\n|---|---:|")
    for name, rates in ops.items():
        print(f"| {name} | {cell(rates)} |")
    print("\n| Arrow read | rows/s | MB/s (keys + values) |\n|---|---:|---:|")
    for name, rates in export.items():
        mbs = statistics.median(rates[1:]) * mb_per_row
        print(f"| {name} | {cell(rates)} | {mbs:,.0f} |")


if __name__ == "__main__":
    main()
