//! The streaming change feed (`Db::changes`) and subscriptions (`Db::subscribe`): bounded
//! memory, order, resumption, commits from other threads, retention and close.

mod common;

use chronokv::vfs::MemFs;
use chronokv::{Change, Db, Error, FeedOptions, Options, Received, Version, WriteBatch};
use common::{aggressive_leveled, compacting_options, mem_options};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn open(opts: Options) -> Db {
    Db::open(Path::new("/db"), opts).expect("open")
}

fn keeping_all(fs: &MemFs, memtable: usize) -> Options {
    Options {
        history_retention: Some(Duration::from_secs(24 * 3600)),
        ..mem_options(fs, memtable)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{:06}", (i * 7919) % 50_000).into_bytes()
}

/// Change number `i` (version `i + 1`): a put, or every 13th a delete.
fn value(i: u64) -> Option<Vec<u8>> {
    (i % 13 != 12).then(|| format!("v{i}").into_bytes())
}

fn write_changes(db: &Db, from: u64, count: u64, per_batch: u64) {
    let mut i = from;
    while i < from + count {
        let mut b = WriteBatch::new();
        for j in i..(i + per_batch).min(from + count) {
            match value(j) {
                Some(v) => b.put(key(j), v),
                None => b.delete(key(j)),
            };
        }
        db.write(b).unwrap();
        i += per_batch;
    }
}

fn check_change(c: &Change, i: u64) {
    assert_eq!(c.version, Version(i + 1));
    assert_eq!(c.key, key(i));
    assert_eq!(c.value.as_deref(), value(i).as_deref());
}

#[test]
fn a_million_changes_stream_through_a_bounded_window() {
    const N: u64 = 1_000_000;
    let fs = MemFs::new();
    // Default compaction: a deep tree, most versions in runs that cover all of them.
    let db = open(keeping_all(&fs, 8 << 20));
    write_changes(&db, 0, N, 1000);
    db.wait_for_compactions().unwrap();
    let opts = FeedOptions {
        window_versions: 100_000,
        window_bytes: 64 << 20,
    };
    let mut feed = db.changes_with(.., opts).unwrap();
    let mut n = 0u64;
    for c in feed.by_ref() {
        check_change(&c.unwrap(), n);
        n += 1;
    }
    assert_eq!(n, N);
    let peak = feed.peak();
    // Flat: never more than one window, a tenth of the stream.
    assert!(peak.changes <= 100_000, "{peak:?}");
    assert!(peak.changes >= 50_000, "the window was used: {peak:?}");
    assert!(peak.bytes <= opts.window_bytes, "{peak:?}");
}

#[test]
fn a_byte_budget_shortens_windows_and_keeps_every_change() {
    let fs = MemFs::new();
    let db = open(keeping_all(&fs, 64 << 10));
    write_changes(&db, 0, 5_000, 7);
    db.flush().unwrap();
    let big = vec![b'x'; 50_000];
    let v = db.put("big", &big).unwrap();
    write_changes(&db, 5_001, 100, 3);
    // A 20 KiB budget: about 200 small changes a window, and the big one alone.
    let opts = FeedOptions {
        window_versions: 1_000_000,
        window_bytes: 20 << 10,
    };
    let mut feed = db.changes_with(.., opts).unwrap();
    let all: Vec<Change> = feed.by_ref().map(|c| c.unwrap()).collect();
    assert_eq!(all.len(), 5_101);
    assert!(all.windows(2).all(|w| w[0].version.0 + 1 == w[1].version.0));
    for (i, c) in all.iter().enumerate() {
        if c.version == v {
            assert_eq!(c.value.as_deref(), Some(&big[..]));
        } else {
            check_change(c, i as u64);
        }
    }
    // One over-budget change may be held alone; otherwise the budget holds.
    assert!(feed.peak().bytes <= opts.window_bytes + big.len() + 64 + 64);
    assert!(feed.peak().changes < 1_000, "{:?}", feed.peak());
}

#[test]
fn a_feed_resumes_exactly_after_the_last_change_seen() {
    let fs = MemFs::new();
    let db = open(Options {
        compaction: aggressive_leveled(),
        ..keeping_all(&fs, 16 << 10)
    });
    write_changes(&db, 0, 3_000, 5);
    let opts = FeedOptions {
        window_versions: 128,
        window_bytes: 1 << 20,
    };
    let mut seen = Vec::new();
    // Stop after arbitrary counts, resume from the last version seen + 1.
    for stop in [1usize, 127, 128, 129, 1000, usize::MAX] {
        let from = seen
            .last()
            .map_or(Version(1), |c: &Change| Version(c.version.0 + 1));
        let mut feed = db.changes_with(from.., opts).unwrap();
        for c in feed.by_ref().take(stop) {
            seen.push(c.unwrap());
        }
        let next = seen.last().map_or(1, |c| c.version.0 + 1);
        assert_eq!(
            feed.cursor(),
            Version(next),
            "the cursor is the next unseen version"
        );
    }
    assert_eq!(seen.len(), 3_000);
    for (i, c) in seen.iter().enumerate() {
        check_change(c, i as u64);
    }
    // A bounded range ends at its end, also inside a window.
    let some: Vec<_> = db
        .changes_with(Version(100)..Version(1_000), opts)
        .unwrap()
        .map(|c| c.unwrap().version.0)
        .collect();
    assert_eq!(some, (100..1_000).collect::<Vec<_>>());
}

#[test]
fn subscribers_get_other_threads_commits_in_order_exactly_once() {
    const WRITERS: u64 = 4;
    const PER_WRITER: u64 = 500;
    let fs = MemFs::new();
    let db = Arc::new(open(Options {
        compaction: aggressive_leveled(),
        ..keeping_all(&fs, 8 << 10)
    }));
    write_changes(&db, 0, 100, 10);
    let total = 100 + WRITERS * PER_WRITER * 2;
    let opts = FeedOptions {
        window_versions: 37,
        window_bytes: 1 << 20,
    };
    // One subscriber from the start of history, one following only new commits.
    let subscribers: Vec<_> = [Version(1), Version(101)]
        .into_iter()
        .map(|from| {
            let mut sub = db.subscribe_with(from, opts).unwrap();
            std::thread::spawn(move || {
                let want = total - (from.0 - 1);
                let got: Vec<Change> = sub
                    .by_ref()
                    .take(want as usize)
                    .map(|c| c.unwrap())
                    .collect();
                (from, got)
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..PER_WRITER {
                    let mut b = WriteBatch::new();
                    b.put(format!("w{w}-{i}"), format!("{i}"));
                    b.delete(format!("w{w}-{}", i / 2));
                    db.write(b).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let all: Vec<Change> = db.changes(..).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(all.len() as u64, total);
    for s in subscribers {
        let (from, got) = s.join().unwrap();
        assert_eq!(got[..], all[(from.0 - 1) as usize..], "from {from}");
    }
}

#[test]
fn a_subscription_waits_times_out_and_ends_when_the_store_closes() {
    let fs = MemFs::new();
    let db = open(mem_options(&fs, 1 << 20));
    db.put("a", "1").unwrap();
    // No retention: only the future can be followed.
    assert!(matches!(
        db.subscribe(Version(1)),
        Err(Error::VersionNotRetained { .. })
    ));
    let mut sub = db.subscribe(Version(db.latest_version().0 + 1)).unwrap();
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(20)).unwrap(),
        Received::Timeout
    );
    db.put("b", "2").unwrap();
    // Without retention the subscription keeps what it has not read, through compaction.
    db.put("b", "3").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    match sub.recv_timeout(Duration::from_secs(60)).unwrap() {
        Received::Change(c) => assert_eq!((c.version, &c.key[..]), (Version(2), &b"b"[..])),
        other => panic!("expected a change, got {other:?}"),
    }
    assert_eq!(
        sub.next().unwrap().unwrap().value.as_deref(),
        Some(&b"3"[..])
    );
    let blocked = std::thread::spawn(move || {
        let rest: Vec<_> = sub.by_ref().collect();
        (
            rest.len(),
            sub.recv_timeout(Duration::from_secs(1)).unwrap(),
        )
    });
    db.put("c", "4").unwrap();
    db.close().unwrap();
    let (rest, after) = blocked.join().unwrap();
    assert_eq!(
        rest, 1,
        "what was committed before close is delivered, then it ends"
    );
    assert_eq!(after, Received::Ended);
}

#[test]
fn a_subscription_that_falls_behind_the_window_ends_with_not_retained() {
    let fs = MemFs::new();
    let db = open(Options {
        history_retention: Some(Duration::from_millis(100)),
        ..compacting_options(&fs, 1 << 20, aggressive_leveled())
    });
    write_changes(&db, 0, 10, 1);
    let opts = FeedOptions {
        window_versions: 2,
        window_bytes: 1 << 20,
    };
    let mut sub = db.subscribe_with(Version(1), opts).unwrap();
    check_change(&sub.next().unwrap().unwrap(), 0);
    // The consumer stalls for longer than the window: versions 3.. left the history.
    std::thread::sleep(Duration::from_millis(300));
    db.put("later", "x").unwrap();
    check_change(&sub.next().unwrap().unwrap(), 1);
    match sub.next() {
        Some(Err(Error::VersionNotRetained { requested, oldest })) => {
            assert_eq!(requested, Version(3));
            assert!(oldest > requested);
        }
        other => panic!("expected VersionNotRetained, got {other:?}"),
    }
    assert!(sub.next().is_none(), "it ended");
}
