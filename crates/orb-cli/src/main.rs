//! The `orb` binary: runs a node (`orb serve`, `orb up`) and talks to one
//! (`orb deploy`, `orb invoke`, `orb fn`, `orb act`), or runs a component
//! in-process (`orb invoke --local`).
//!
//! Owns: argument parsing, configuration merging (flags > `ORB_*` env >
//! `orb.toml` > defaults), human and `--json` output, progress bars, exit codes.
//!
//! Must not know: HTTP routes beyond what `orb-client` exposes, store internals.

mod args;
mod commands;
mod events;
mod network;
mod output;
mod schedules;
mod secrets;
mod tokens;

use clap::Parser;

/// mimalloc instead of glibc's allocator: a node allocates and frees small
/// objects on every request from many threads, where glibc's arenas
/// contend (BENCHMARKS.md, issue 8).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // With RUST_BACKTRACE=1 every library error value (a guest's trap, a
    // timeout; and, with wasmtime's concurrency support on, every store
    // drop) would capture a backtrace: ~8 µs each. Panics keep their
    // backtraces (RUST_BACKTRACE); library errors capture none unless
    // RUST_LIB_BACKTRACE asks for them.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = args::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            std::process::ExitCode::FAILURE
        }
    }
}
