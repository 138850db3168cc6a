"""chronokv: an embeddable, key-versioned LSM storage engine with time travel.

Open a store with ``Db(path, **options)``; every commit gets a version, and the store can
be read as it was at any retained version or moment (``snapshot_at``, ``snapshot_as_of``),
with each key's history and a change feed. Snapshots stream Arrow data out
(``Snapshot.to_arrow`` returns a ``pyarrow.RecordBatchReader``) with no copy on the Python
side. Every engine call releases the GIL. See README.md for examples.
"""

from ._native import (
    BackupEngine,
    Change,
    ChangeIter,
    ChronoError,
    Closed,
    Conflict,
    Corruption,
    Db,
    HistoryEntry,
    InvalidArgument,
    IoError,
    Locked,
    Poisoned,
    ReadOnly,
    Scan,
    Snapshot,
    TimeNotRetained,
    Transaction,
    VersionNotRetained,
    WriteBatch,
    __version__,
)

__all__ = [
    "BackupEngine",
    "Change",
    "ChangeIter",
    "ChronoError",
    "Closed",
    "Conflict",
    "Corruption",
    "Db",
    "HistoryEntry",
    "InvalidArgument",
    "IoError",
    "Locked",
    "Poisoned",
    "ReadOnly",
    "Scan",
    "Snapshot",
    "TimeNotRetained",
    "Transaction",
    "VersionNotRetained",
    "WriteBatch",
    "__version__",
]
