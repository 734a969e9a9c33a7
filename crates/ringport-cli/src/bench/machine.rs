//! What the header says about the machine.

use std::path::Path;

/// The machine a run was measured on.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cores: usize,
    /// The CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// `uname -sr`.
    pub kernel: String,
    /// `uname -m`.
    pub arch: String,
    /// The file system type of the directory the test files live in.
    pub fs: String,
}

fn field(buf: &[libc::c_char]) -> String {
    // SAFETY: uname fills NUL-terminated strings into its fixed arrays.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// The name of a `statfs` magic number.
fn fs_name(magic: i64) -> String {
    match magic {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794c_7630 => "overlayfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "fuse".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0x0102_1997 => "9p".into(),
        m => format!("fs magic {m:#x}"),
    }
}

impl Machine {
    /// Looks the machine up; `dir` is where the test files go.
    pub fn probe(dir: &Path) -> Machine {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "unknown CPU".into());
        // SAFETY: utsname is plain data; uname fills it.
        let mut u: libc::utsname = unsafe { core::mem::zeroed() };
        // SAFETY: u is a valid, writable utsname.
        let (kernel, arch) = if unsafe { libc::uname(&mut u) } == 0 {
            (format!("{} {}", field(&u.sysname), field(&u.release)), field(&u.machine))
        } else {
            ("unknown kernel".into(), "unknown".into())
        };
        let fs = {
            let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str())).unwrap_or_default();
            // SAFETY: statfs is plain data; the call fills it.
            let mut s: libc::statfs = unsafe { core::mem::zeroed() };
            // SAFETY: c is NUL-terminated; s is writable.
            if unsafe { libc::statfs(c.as_ptr(), &mut s) } == 0 {
                fs_name(s.f_type as i64)
            } else {
                "unknown fs".into()
            }
        };
        Machine { cores, cpu, kernel, arch, fs }
    }
}
