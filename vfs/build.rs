//! Planted bugs (RELIABILITY.md G6) are compiled in only when the build's environment asks
//! for them: `CHRONOKV_PLANT_BUGS=1 cargo build ...` sets `--cfg chronokv_bugs` for this
//! crate, whose `bug!` hook then consults `CHRONOKV_BUG` at run time. A cfg rather than a
//! cargo feature, so `--all-features` never plants bugs; set by this build script rather
//! than RUSTFLAGS, so only chronokv's own crates rebuild when it changes.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chronokv_bugs)");
    println!("cargo::rerun-if-env-changed=CHRONOKV_PLANT_BUGS");
    if std::env::var("CHRONOKV_PLANT_BUGS").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=chronokv_bugs");
    }
}
