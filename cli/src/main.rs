//! The `chronokv` debug tool. Its subcommands arrive with the CLI issue; until then it only
//! says so, so that nobody mistakes it for a working tool.

fn main() {
    eprintln!("chronokv: the debug CLI is not built yet; see the project's issues (the CLI issue)");
    std::process::exit(2);
}
