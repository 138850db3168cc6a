//! Reruns one fault case of the faults stage N times and prints its violations:
//! `cargo run --release -p chronokv-harness --example fault_case -- SEED OPS CALL eio|enospc once|forever [N]`
use chronokv_harness::faults::{check_case, Fault};
use chronokv_vfs::{FaultKind, FaultMode};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        eprintln!("usage: fault_case SEED OPS CALL eio|enospc once|forever [N]");
        std::process::exit(2);
    }
    let num = |i: usize| a[i].parse::<u64>().expect("a number");
    let kind = if a[3] == "eio" {
        FaultKind::Eio
    } else {
        FaultKind::Enospc
    };
    let mode = if a[4] == "once" {
        FaultMode::Once
    } else {
        FaultMode::Forever
    };
    let n = a.get(5).map_or(1, |s| s.parse().expect("a number"));
    let fault = Fault {
        at: num(2),
        kind,
        mode,
    };
    let mut failing = 0;
    for _ in 0..n {
        let v = check_case(num(0), num(1) as usize, fault);
        if !v.is_empty() {
            failing += 1;
            for line in &v {
                println!("{line}");
            }
        }
    }
    println!("{failing} of {n} runs failed");
}
