//! Rewritten `io_uring_enter` call sites (`src/rewrite.rs`): a program's
//! inline `mov $426,%eax; syscall` sequences, at three alignments and at
//! the end of a function of liburing's shape, from four threads at once.
//! The two that fit an aligned word and the function tail are rewritten
//! after their first trap and then served without one; the third keeps
//! trapping while other threads run program code, and is rewritten too in
//! a program with one thread; results, errors and a vector register held
//! across the call are right on every path, natively and under `ringport
//! run`.

mod common;
use common::*;

fn figures(stdout: &str) -> (u64, u64, u64) {
    let w: Vec<u64> = stdout.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    (w[0], w[1], w[2])
}

#[test]
fn enter_sites_are_rewritten_and_stay_correct() {
    let exe = build_c("rewrite");
    let native = run(&mut std::process::Command::new(&exe), 120);
    if native.status.success() {
        println!("native: {}", String::from_utf8_lossy(&native.stdout).trim());
    } else {
        println!("SKIPPED native run: {}", text(&native));
    }
    let out = run(ringport_run().arg(&exe), 120);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.starts_with("ok "), "{}", text(&out));
    let (sites, traps, calls) = figures(&stdout);
    println!("ringport: {sites} sites rewritten, {traps} traps for {calls} enters");
    assert_eq!(sites, 3, "{stdout}");
    // The third site traps every time (a quarter of the calls); the others
    // only until they are rewritten (other threads keep trapping there
    // while one rewrites it, which on a loaded machine can take a
    // millisecond or two: a few hundred traps; unrewritten, they would be
    // three quarters of the calls).
    assert!(traps < calls / 4 + 2000, "{stdout}");
    assert!(traps >= calls / 4, "{stdout}");
}

/// From one thread, the site that fits no aligned word is rewritten too:
/// four sites, each trapping once.
#[test]
fn one_thread_gets_every_site_rewritten() {
    let exe = build_c("rewrite");
    let out = run(ringport_run().arg(&exe).arg("single"), 120);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (sites, traps, calls) = figures(&stdout);
    assert_eq!(sites, 4, "{stdout}");
    // (Besides one per site: setup and the closing of the ring.)
    assert!(traps < 10, "{traps} traps for {calls} enters: {stdout}");
}

/// Every vector and mask register the CPU has (xmm, ymm, zmm, k) keeps its
/// value across a rewritten enter while the engine overwrites all of them
/// (`RINGPORT_TEST_CLOBBER=1`), and upper halves in their initial state
/// come back as zeros; natively too.
#[test]
fn rewritten_sites_keep_every_vector_register() {
    let exe = build_c("rewrite");
    let native = run(std::process::Command::new(&exe).arg("vectors"), 120);
    if native.status.success() {
        println!("native: {}", String::from_utf8_lossy(&native.stdout).trim());
    } else {
        println!("SKIPPED native run: {}", text(&native));
    }
    let out = run(ringport_run().env("RINGPORT_TEST_CLOBBER", "1").arg(&exe).arg("vectors"), 120);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("ringport: {}", stdout.trim());
    let (sites, traps, _) = figures(&stdout);
    let kinds: u64 = stdout.split_whitespace().last().and_then(|k| k.parse().ok()).unwrap();
    assert_eq!(sites, kinds, "every site rewritten: {stdout}");
    assert!(traps < 10, "{stdout}");
}

#[test]
fn rewriting_can_be_switched_off() {
    let exe = build_c("rewrite");
    let out = run(ringport_run().env("RINGPORT_REWRITE", "0").arg(&exe), 120);
    assert!(out.status.success(), "{}", text(&out));
    let (sites, traps, calls) = figures(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(sites, 0);
    assert!(traps >= calls, "every enter traps: {traps} for {calls}");
}
