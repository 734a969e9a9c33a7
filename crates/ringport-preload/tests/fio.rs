//! fio (Debian's package) with `--ioengine=io_uring` under `ringport run`,
//! inside a Docker-like "io_uring → EPERM" filter: sequential write, random
//! read and randrw jobs with `verify=crc32c`, zero errors. A small version
//! of `scripts/fio-verify.sh`.

mod common;
use common::*;
use std::process::Command;

const JOB: &str = "\
[global]
ioengine=io_uring
filename=fio-verify.dat
size=8m
bs=4k
iodepth=16
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1

[seqwrite]
rw=write

[randread]
stonewall
rw=randread

[randrw]
stonewall
rw=randrw
rwmixread=50
";

fn fio() -> String {
    let out = Command::new("fio").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => "fio".into(),
        _ => panic!("fio is needed for this test: apt-get install -y fio"),
    }
}

fn work_dir(tag: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fio-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("job.fio"), JOB).unwrap();
    d
}

#[test]
fn fio_verify_jobs_pass_under_ringport_in_a_container() {
    let fio = fio();
    let eperm = build_c("eperm-exec");
    let dir = work_dir("ringport");
    let rr = ringport_run();
    let mut cmd = Command::new(&eperm);
    cmd.current_dir(&dir)
        .arg(rr.get_program())
        .args(rr.get_args())
        .envs(rr.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([fio.as_str(), "--output-format=terse", "--terse-version=3", "job.fio"]);
    let out = run(&mut cmd, 120);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let jobs: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| l.starts_with("3;"))
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            (f[2].to_string(), f[4].to_string())
        })
        .collect();
    let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["seqwrite", "randread", "randrw"], "{}", text(&out));
    assert!(jobs.iter().all(|(_, err)| err == "0"), "job errors: {jobs:?}\n{}", text(&out));
}

#[test]
fn fio_io_uring_fails_natively_in_a_container() {
    let fio = fio();
    let eperm = build_c("eperm-exec");
    let dir = work_dir("native");
    let out = run(
        Command::new(&eperm).current_dir(&dir).args([fio.as_str(), "--output-format=terse", "--terse-version=3", "job.fio"]),
        60,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Every job reports errno 1 (EPERM) from io_queue_init.
    assert!(stdout.lines().filter(|l| l.starts_with("3;")).all(|l| l.split(';').nth(4) == Some("1")), "{}", text(&out));
}
