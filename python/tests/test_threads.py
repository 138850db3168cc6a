"""Python threads share a Db: reads run in parallel with the GIL released, beside writers."""

import threading
import time

import chronokv


def test_threads_read_and_write_in_parallel(db):
    for i in range(2000):
        db.put(f"k{i:05}", f"v{i}")
    errors = []

    def reader(seed):
        try:
            for round in range(20):
                i = (seed * 131 + round * 17) % 2000
                assert db.get(f"k{i:05}") == f"v{i}".encode()
                snap = db.snapshot()
                keys = [k for k, _ in snap.scan("k00500", "k00600")]
                assert keys == [f"k{j:05}".encode() for j in range(500, 600)]
        except Exception as e:  # reported to the main thread
            errors.append(e)

    def writer():
        try:
            for i in range(500):
                db.put(f"w{i:05}", "x")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(1 for _ in db.scan(prefix="w")) == 500


def test_engine_calls_release_the_gil(db):
    for i in range(40_000):
        db.put(f"k{i:06}", "v" * 100)
    db.flush()
    window = []
    finished = threading.Event()

    def long_call():
        begin = time.perf_counter()
        db.verify()  # one engine call that reads every block
        window.extend([begin, time.perf_counter()])
        finished.set()

    t = threading.Thread(target=long_call)
    t.start()
    ticks = []
    while not finished.is_set():
        ticks.append(time.perf_counter())
    t.join()
    begin, end = window
    inside = sum(1 for tick in ticks if begin < tick < end)
    # Had verify held the GIL, no Python code could have run here while it ran.
    assert inside > 10, (inside, end - begin)


def test_many_threads_share_one_scan(db):
    for i in range(3000):
        db.put(f"k{i:05}", "v")
    scan = db.scan()
    seen, lock = [], threading.Lock()

    def drain():
        for key, _ in scan:
            with lock:
                seen.append(key)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == [f"k{i:05}".encode() for i in range(3000)]
