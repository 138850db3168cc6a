"""A child process writing with synced durability is killed with SIGKILL mid-write; on
reopen, every write it acknowledged (printed after the call returned) is there."""

import os
import signal
import subprocess
import sys
import textwrap

import chronokv

CHILD = textwrap.dedent(
    """
    import sys, chronokv
    db = chronokv.Db(sys.argv[1], durability="sync", memtable_size=256 << 10)
    i = 0
    while True:
        batch = chronokv.WriteBatch()
        batch.put(f"k{i:07}", f"v{i}" * 20).put(f"pair{i % 100:03}", str(i))
        version = db.write(batch)
        print(i, version, flush=True)  # acknowledged: write() returned
        i += 1
    """
)


def test_acknowledged_writes_survive_sigkill(path):
    for round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdout=subprocess.PIPE, text=True,
        )
        acked = []
        for line in child.stdout:
            acked.append(tuple(map(int, line.split())))
            if len(acked) == 300 + 100 * round:
                break
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()  # lines printed before the kill are acknowledged too
        acked += [tuple(map(int, l.split())) for l in rest.splitlines() if len(l.split()) == 2]
        child.wait()
        assert child.returncode == -signal.SIGKILL
        with chronokv.Db(path) as db:
            last_i, last_version = acked[-1]
            assert db.latest_version >= last_version
            for i, _ in acked:
                assert db.get(f"k{i:07}") == f"v{i}".encode() * 20
            # The batch is atomic: its pair key holds this i or a later one with i % 100.
            for i, _ in acked[-100:]:
                assert int(db.get(f"pair{i % 100:03}")) >= i
            # Clean up for the next round: a fresh child starts from key 0 again.
            for key, _ in list(db.scan(prefix="k")):
                db.delete(key)
