//! chronokv-compaction: compaction strategies and the executor.
//!
//! Empty for now: the compaction issue fills it with leveled and tiered strategies (pure
//! functions from a description of the levels to a task) and the merge executor. Until then
//! the engine keeps every run in level 0.
