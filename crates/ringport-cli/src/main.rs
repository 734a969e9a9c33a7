//! The `ringport` command: `ringport bench ...` and `ringport run -- prog`.

mod bench;
mod run;

use std::ffi::OsString;

const USAGE: &str = "usage: ringport bench <workload> [options]\n       ringport run [--] prog [args...]";

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match args.first().and_then(|a| a.to_str()) {
        Some("bench") => bench::main(&args[1..]),
        Some("run") => run::main(&args[1..]),
        // Hidden: the `ringport-trapped` backend's worker process, started
        // by `ringport bench` itself (see bench/trapped.rs).
        Some(bench::WORKER_COMMAND) => bench::trapped_worker(&args[1..]),
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
