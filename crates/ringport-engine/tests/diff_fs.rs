//! Differential tests for the file-system ops: OPENAT, OPENAT2, CLOSE
//! (direct descriptors included), FILES_UPDATE, STATX, MKDIRAT, RENAMEAT,
//! UNLINKAT, SYMLINKAT, LINKAT, FALLOCATE, SYNC_FILE_RANGE, FTRUNCATE,
//! FADVISE, MADVISE, SPLICE, TEE and the xattr ops. Each scenario runs on
//! the kernel and on ringport, each in a fresh temporary directory, and
//! records CQEs, the resulting files (contents, sizes, modes, links) and
//! buffers; the two traces must be equal. Fd numbers are recorded as `fd`
//! (other test threads open fds in between), never as numbers.

mod common;

use common::*;
use ringport_engine::abi::{self, op};
use std::ffi::{c_void, CString};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// Runs one SQE alone and records its CQE.
fn one(t: &mut Trace, r: &Ring, label: &str, sqe: Sqe) {
    t.rec(label, r.one_short(&sqe));
}

/// Runs one SQE whose result is an fd: records `fd` for a success (the
/// number is not comparable) and returns the fd (-1 on failure).
fn one_fd(t: &mut Trace, r: &Ring, label: &str, sqe: Sqe) -> i32 {
    let (s, c) = r.one(&sqe);
    match c {
        Some(c) if c.res >= 0 => {
            t.rec(label, (s, c.user_data, "fd", c.flags));
            c.res
        }
        Some(c) => {
            t.rec(label, (s, c.short()));
            -1
        }
        None => {
            t.rec(label, (s, "no CQE"));
            -1
        }
    }
}

/// A temporary directory (removed with its contents on drop) and an fd on it.
struct Dir {
    path: PathBuf,
    fd: i32,
}

impl Dir {
    fn new(tag: &str) -> Dir {
        let path = temp_path(tag);
        std::fs::create_dir(&path).expect("mkdir temp dir");
        let fd = open_path(&path, libc::O_RDONLY | libc::O_DIRECTORY);
        Dir { path, fd }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.p(name), data).expect("write temp file");
    }
    fn open(&self, name: &str, flags: i32) -> i32 {
        open_path(&self.p(name), flags)
    }
    /// What is at `name`: (type and mode, size, link count), or the errno.
    fn meta(&self, name: &str) -> Result<(u32, u64, u64), &'static str> {
        match std::fs::symlink_metadata(self.p(name)) {
            Ok(m) => Ok((m.mode(), if m.is_dir() { 0 } else { m.size() }, m.nlink())),
            Err(e) => Err(errname(e.raw_os_error().unwrap_or(0))),
        }
    }
    fn contents(&self, name: &str) -> Result<Vec<u8>, &'static str> {
        std::fs::read(self.p(name)).map_err(|e| errname(e.raw_os_error().unwrap_or(0)))
    }
    /// The absolute path as a C string.
    fn cpath(&self, name: &str) -> CString {
        use std::os::unix::ffi::OsStrExt;
        CString::new(self.p(name).as_os_str().as_bytes()).expect("path")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        close_fd(self.fd);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// An SQE of `opcode` on directory fd `dfd` with the path in `addr`.
fn at(opcode: u8, dfd: i32, path: &CString, user_data: u64) -> Sqe {
    Sqe { fd: dfd, addr: path.as_ptr() as u64, ..Sqe::new(opcode, user_data) }
}

fn fd_flags(fd: i32) -> i32 {
    // SAFETY: F_GETFL only reads the file's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

fn fd_size(fd: i32) -> i64 {
    // SAFETY: lseek on an fd we own.
    unsafe { libc::lseek(fd, 0, libc::SEEK_END) }
}

/// An fd on `path` moved to a number at or above 700, which no other test
/// thread takes, so that "closed" can be checked without a race.
fn high_fd(fd: i32) -> i32 {
    // SAFETY: F_DUPFD_CLOEXEC only creates a new fd.
    let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 700) };
    close_fd(fd);
    h
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only inspects the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Two pages, the second PROT_NONE: `at(n)` is `n` readable bytes before
/// the fault.
struct Edge(Mem);

impl Edge {
    fn new() -> Edge {
        let m = Mem::rw(2 * page_size());
        // SAFETY: protecting the second page of our own mapping.
        unsafe { libc::mprotect(m.ptr.add(page_size()).cast(), page_size(), libc::PROT_NONE) };
        Edge(m)
    }
    /// Writes `s` so that it ends exactly at the fault; returns its address.
    fn put(&mut self, s: &[u8]) -> u64 {
        let off = page_size() - s.len();
        self.0.bytes_mut()[off..page_size()].copy_from_slice(s);
        self.0.addr() + off as u64
    }
}

const ALLOC: u32 = abi::IORING_FILE_INDEX_ALLOC as u32;

// ---------------------------------------------------------------------------
// OPENAT
// ---------------------------------------------------------------------------

#[test]
fn fs_openat() {
    diff("fs_openat", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("openat");
        d.write("data", b"hello");
        let data = c("data");
        let fd = one_fd(t, &r, "open O_RDONLY", Sqe { op_flags: libc::O_RDONLY as u32, ..at(op::OPENAT, d.fd, &data, 1) });
        if fd >= 0 {
            t.rec("flags (O_LARGEFILE forced)", fd_flags(fd));
            t.rec("read", read_fd(fd, 64));
            close_fd(fd);
        }
        let newf = c("new");
        let create = (libc::O_CREAT | libc::O_EXCL | libc::O_RDWR) as u32;
        let fd = one_fd(t, &r, "O_CREAT|O_EXCL 0640", Sqe { op_flags: create, len: 0o640, ..at(op::OPENAT, d.fd, &newf, 2) });
        if fd >= 0 {
            t.rec("write", write_fd(fd, b"abc"));
            close_fd(fd);
        }
        t.rec("created", d.meta("new"));
        one(t, &r, "O_CREAT|O_EXCL again", Sqe { op_flags: create, len: 0o640, ..at(op::OPENAT, d.fd, &newf, 3) });
        let fd = one_fd(t, &r, "O_TRUNC", Sqe { op_flags: (libc::O_TRUNC | libc::O_WRONLY) as u32, ..at(op::OPENAT, d.fd, &newf, 4) });
        close_fd(fd);
        t.rec("truncated", d.meta("new"));
        one(t, &r, "missing", at(op::OPENAT, d.fd, &c("missing"), 5));
        one(t, &r, "empty path", at(op::OPENAT, d.fd, &c(""), 6));
        one(t, &r, "NULL path", Sqe { addr: 0, ..at(op::OPENAT, d.fd, &data, 7) });
        one(t, &r, "unmapped path", Sqe { addr: guard_page(), ..at(op::OPENAT, d.fd, &data, 8) });
        let mut edge = Edge::new();
        let a = edge.put(b"data\0");
        let fd = one_fd(t, &r, "path ending at a fault", Sqe { addr: a, ..at(op::OPENAT, d.fd, &data, 9) });
        close_fd(fd);
        let a = edge.put(b"dat");
        one(t, &r, "path running into a fault", Sqe { addr: a, ..at(op::OPENAT, d.fd, &data, 10) });
        let long = c(&"a".repeat(5000));
        one(t, &r, "path longer than PATH_MAX", at(op::OPENAT, d.fd, &long, 11));
        one(t, &r, "buf_index", Sqe { buf_index: 1, ..at(op::OPENAT, d.fd, &data, 12) });
        one(t, &r, "IOSQE_FIXED_FILE", at(op::OPENAT, 0, &data, 13).flags(abi::IOSQE_FIXED_FILE));
        one(t, &r, "bad dirfd", at(op::OPENAT, BAD_FD, &data, 14));
        let file_fd = d.open("data", libc::O_RDONLY);
        one(t, &r, "dirfd is a file", at(op::OPENAT, file_fd, &data, 15));
        close_fd(file_fd);
        let abs = d.cpath("data");
        let fd = one_fd(t, &r, "absolute path ignores dirfd", at(op::OPENAT, BAD_FD, &abs, 16));
        close_fd(fd);
        one(
            t,
            &r,
            "file_index with O_CLOEXEC",
            Sqe { op_flags: libc::O_CLOEXEC as u32, file_index: 1, ..at(op::OPENAT, d.fd, &data, 17) },
        );
        let fd = one_fd(t, &r, "O_PATH", Sqe { op_flags: (libc::O_PATH | libc::O_RDWR) as u32, ..at(op::OPENAT, d.fd, &data, 18) });
        if fd >= 0 {
            t.rec("O_PATH flags", fd_flags(fd));
            close_fd(fd);
        }
        let fd = one_fd(t, &r, "unknown flag bits are dropped", Sqe { op_flags: 1 << 30, ..at(op::OPENAT, d.fd, &data, 19) });
        close_fd(fd);
        one(t, &r, "O_DIRECTORY on a file", Sqe { op_flags: libc::O_DIRECTORY as u32, ..at(op::OPENAT, d.fd, &data, 20) });
        let fd = one_fd(t, &r, "mode without O_CREAT is ignored", Sqe { len: 0o7777, ..at(op::OPENAT, d.fd, &data, 21) });
        close_fd(fd);
        let fd = one_fd(t, &r, "IOSQE_ASYNC", at(op::OPENAT, d.fd, &data, 22).flags(abi::IOSQE_ASYNC));
        close_fd(fd);
        let dot = c(".");
        let fd = one_fd(
            t,
            &r,
            "O_TMPFILE",
            Sqe { op_flags: (libc::O_TMPFILE | libc::O_RDWR) as u32, len: 0o600, ..at(op::OPENAT, d.fd, &dot, 23) },
        );
        if fd >= 0 {
            t.rec("tmpfile write", write_fd(fd, b"xy"));
            t.rec("tmpfile size", fd_size(fd));
            close_fd(fd);
        }
        // FIFOs: the inline attempt is non-blocking, as in the kernel.
        let fifo = d.cpath("fifo");
        // SAFETY: fifo is a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let fd = one_fd(t, &r, "FIFO O_RDONLY, no writer", at(op::OPENAT, d.fd, &c("fifo"), 24));
        if fd >= 0 {
            t.rec("FIFO reader flags", fd_flags(fd));
            close_fd(fd);
        }
        one(t, &r, "FIFO O_WRONLY, no reader", Sqe { op_flags: libc::O_WRONLY as u32, ..at(op::OPENAT, d.fd, &c("fifo"), 25) });
        // A prep failure ends the batch.
        let empty = c("");
        assert!(r.push(&at(op::OPENAT, d.fd, &empty, 26)));
        assert!(r.push(&Sqe::nop(27)));
        let s = r.submit(2);
        t.rec("batch after a prep failure: submitted", s);
        t.rec("batch CQEs", shorts(&r.wait_cqes(1, Duration::from_secs(5))));
        t.rec("rest submitted", r.submit(1));
        t.rec("rest CQEs", shorts(&r.wait_cqes(1, Duration::from_secs(5))));
    });
}

/// A FIFO opened for reading with IOSQE_ASYNC blocks (in a worker) until
/// a writer comes; the submitter is not held.
#[test]
fn fs_open_blocks_in_worker() {
    diff("fs_open_blocks_in_worker", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("fifo-async");
        let fifo = d.cpath("fifo");
        // SAFETY: fifo is a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let name = c("fifo");
        assert!(r.push(&at(op::OPENAT, d.fd, &name, 1).flags(abi::IOSQE_ASYNC)));
        t.rec("submitted", r.submit(1));
        t.rec("CQEs before a writer", shorts(&r.wait_cqes(1, Duration::from_millis(200))));
        // The reader counts once the worker has started the open: until
        // then a non-blocking writer gets ENXIO, so retry for a while.
        let mut w = -1;
        for _ in 0..500 {
            // SAFETY: fifo is a valid C string.
            w = unsafe { libc::open(fifo.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
            if w >= 0 || errno() != libc::ENXIO {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        t.rec("writer opened", if w >= 0 { Ok(()) } else { Err(errname(errno())) });
        let cq = r.wait_cqes(1, Duration::from_secs(5));
        t.rec("CQE after the writer", cq.iter().map(|c| (c.user_data, c.res >= 0)).collect::<Vec<_>>());
        for c in cq {
            if c.res >= 0 {
                close_fd(c.res);
            }
        }
        close_fd(w);
    });
}

// ---------------------------------------------------------------------------
// OPENAT2
// ---------------------------------------------------------------------------

/// An open_how with room for a 4th (future) field.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct How {
    flags: u64,
    mode: u64,
    resolve: u64,
    extra: u64,
}

fn openat2(dfd: i32, path: &CString, how: &How, len: u32, user_data: u64) -> Sqe {
    Sqe { off: how as *const How as u64, len, ..at(op::OPENAT2, dfd, path, user_data) }
}

#[test]
fn fs_openat2() {
    use linux_raw_sys::general as g;
    diff("fs_openat2", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("openat2");
        d.write("data", b"hello");
        std::fs::create_dir(d.p("sub")).expect("mkdir");
        std::os::unix::fs::symlink("../data", d.p("sub/lnk")).expect("symlink");
        let data = c("data");
        let plain = How::default();
        let fd = one_fd(t, &r, "plain", openat2(d.fd, &data, &plain, 24, 1));
        if fd >= 0 {
            t.rec("flags", fd_flags(fd));
            close_fd(fd);
        }
        one(t, &r, "size 16", openat2(d.fd, &data, &plain, 16, 2));
        let fd = one_fd(t, &r, "size 32, zero tail", openat2(d.fd, &data, &plain, 32, 3));
        close_fd(fd);
        one(t, &r, "size 32, nonzero tail", openat2(d.fd, &data, &How { extra: 1, ..plain }, 32, 4));
        one(t, &r, "how NULL", Sqe { off: 0, ..openat2(d.fd, &data, &plain, 24, 5) });
        one(t, &r, "how unmapped", Sqe { off: guard_page(), ..openat2(d.fd, &data, &plain, 24, 6) });
        one(t, &r, "flags above 32 bits", openat2(d.fd, &data, &How { flags: 1 << 40, ..plain }, 24, 7));
        one(t, &r, "unknown flag", openat2(d.fd, &data, &How { flags: 1 << 30, ..plain }, 24, 8));
        one(t, &r, "mode without O_CREAT", openat2(d.fd, &data, &How { mode: 0o600, ..plain }, 24, 9));
        one(t, &r, "unknown resolve bit", openat2(d.fd, &data, &How { resolve: 1 << 20, ..plain }, 24, 10));
        let up = c("../data");
        let subfd = d.open("sub", libc::O_RDONLY | libc::O_DIRECTORY);
        one(t, &r, "RESOLVE_BENEATH escaping", openat2(subfd, &up, &How { resolve: g::RESOLVE_BENEATH as u64, ..plain }, 24, 11));
        one(t, &r, "RESOLVE_NO_SYMLINKS", openat2(subfd, &c("lnk"), &How { resolve: g::RESOLVE_NO_SYMLINKS as u64, ..plain }, 24, 12));
        let fd = one_fd(t, &r, "symlink followed", openat2(subfd, &c("lnk"), &plain, 24, 13));
        close_fd(fd);
        close_fd(subfd);
        let cached_create = How { flags: libc::O_CREAT as u64, mode: 0o600, resolve: g::RESOLVE_CACHED as u64, extra: 0 };
        one(t, &r, "RESOLVE_CACHED with O_CREAT", openat2(d.fd, &c("c"), &cached_create, 24, 14));
        let create = How { flags: (libc::O_CREAT | libc::O_WRONLY) as u64, mode: 0o604, ..plain };
        let fd = one_fd(t, &r, "O_CREAT 0604", openat2(d.fd, &c("made"), &create, 24, 15));
        close_fd(fd);
        t.rec("made", d.meta("made"));
        one(t, &r, "O_PATH|O_RDWR", openat2(d.fd, &data, &How { flags: (libc::O_PATH | libc::O_RDWR) as u64, ..plain }, 24, 16));
        one(
            t,
            &r,
            "file_index with O_CLOEXEC",
            Sqe { file_index: 1, ..openat2(d.fd, &data, &How { flags: libc::O_CLOEXEC as u64, ..plain }, 24, 17) },
        );
        one(t, &r, "empty path", openat2(d.fd, &c(""), &plain, 24, 18));
        one(t, &r, "huge size, zero tail unmapped", openat2(d.fd, &data, &plain, 1 << 20, 19));
    });
}

// ---------------------------------------------------------------------------
// CLOSE and direct descriptors
// ---------------------------------------------------------------------------

fn close_sqe(fd: i32, user_data: u64) -> Sqe {
    Sqe { fd, ..Sqe::new(op::CLOSE, user_data) }
}

fn close_slot(slot: u32, user_data: u64) -> Sqe {
    Sqe { fd: 0, file_index: slot + 1, ..Sqe::new(op::CLOSE, user_data) }
}

#[test]
fn fs_close() {
    diff("fs_close", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("close");
        d.write("data", b"hello");
        let fd = high_fd(d.open("data", libc::O_RDONLY));
        one(t, &r, "close an fd", close_sqe(fd, 1));
        t.rec("still open", is_open(fd));
        one(t, &r, "close it again", close_sqe(fd, 2));
        one(t, &r, "close a bad fd", close_sqe(BAD_FD, 3));
        one(t, &r, "close -1", close_sqe(-1, 4));
        let fd = high_fd(d.open("data", libc::O_RDONLY));
        one(t, &r, "off", Sqe { off: 1, ..close_sqe(fd, 5) });
        one(t, &r, "addr", Sqe { addr: 1, ..close_sqe(fd, 6) });
        one(t, &r, "len", Sqe { len: 1, ..close_sqe(fd, 7) });
        one(t, &r, "op_flags", Sqe { op_flags: 1, ..close_sqe(fd, 8) });
        one(t, &r, "buf_index", Sqe { buf_index: 1, ..close_sqe(fd, 9) });
        one(t, &r, "IOSQE_FIXED_FILE", close_sqe(0, 10).flags(abi::IOSQE_FIXED_FILE));
        one(t, &r, "file_index and fd", Sqe { file_index: 1, ..close_sqe(fd, 11) });
        t.rec("fd untouched by failed closes", is_open(fd));
        close_fd(fd);
        one(t, &r, "slot without a table", close_slot(0, 12));
        one(t, &r, "the ring's own fd", close_sqe(r.fd, 13));
        let f = d.open("data", libc::O_RDONLY);
        t.rec("register", res(r.register_files(&[f, -1])));
        close_fd(f);
        one(t, &r, "close slot 0", close_slot(0, 14));
        one(t, &r, "close slot 0 again", close_slot(0, 15));
        one(t, &r, "close empty slot 1", close_slot(1, 16));
        one(t, &r, "close slot 2 (out of range)", close_slot(2, 17));
        one(t, &r, "close slot ALLOC-1", Sqe { fd: 0, file_index: ALLOC, ..Sqe::new(op::CLOSE, 18) });
        let mut buf = [0u8; 8];
        one(
            t,
            &r,
            "read closed slot",
            Sqe::read(0, buf.as_mut_ptr(), 5, 0, 19).flags(abi::IOSQE_FIXED_FILE),
        );
    });
}

fn fd_install(slot: i32, flags: u32, user_data: u64) -> Sqe {
    Sqe { fd: slot, op_flags: flags, ..Sqe::new(op::FIXED_FD_INSTALL, user_data) }.flags(abi::IOSQE_FIXED_FILE)
}

#[test]
fn fs_fixed_fd_install() {
    diff("fs_fixed_fd_install", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("fd-install");
        d.write("data", b"installed");
        let data = c("data");
        t.rec("register 2 empty", res(r.register_files(&[-1, -1])));
        one(t, &r, "open into slot 0", open_direct(d.fd, &data, 1, 1));
        let fd = one_fd(t, &r, "install slot 0", fd_install(0, 0, 2));
        if fd >= 0 {
            // SAFETY: F_GETFD only reads the fd flags.
            t.rec("cloexec", unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC);
            t.rec("read", read_fd(fd, 64));
            close_fd(fd);
        }
        let fd = one_fd(t, &r, "install NO_CLOEXEC", fd_install(0, abi::IORING_FIXED_FD_NO_CLOEXEC, 3));
        if fd >= 0 {
            // SAFETY: F_GETFD only reads the fd flags.
            t.rec("cloexec", unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC);
            close_fd(fd);
        }
        one(t, &r, "empty slot", fd_install(1, 0, 4));
        one(t, &r, "out of range", fd_install(5, 0, 5));
        one(t, &r, "unknown flag", fd_install(0, 2, 6));
        one(t, &r, "without IOSQE_FIXED_FILE", Sqe { fd: 0, ..Sqe::new(op::FIXED_FD_INSTALL, 7) });
        one(t, &r, "off", Sqe { off: 1, ..fd_install(0, 0, 8) });
        one(t, &r, "addr3", Sqe { addr3: 1, ..fd_install(0, 0, 9) });
        one(t, &r, "splice_fd_in", Sqe { file_index: 1, ..fd_install(0, 0, 10) });
    });
}

fn open_direct(dfd: i32, path: &CString, file_index: u32, user_data: u64) -> Sqe {
    Sqe { file_index, ..at(op::OPENAT, dfd, path, user_data) }
}

#[test]
fn fs_direct_descriptors() {
    diff("fs_direct_descriptors", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("direct");
        d.write("data", b"direct!");
        let data = c("data");
        one(t, &r, "ALLOC without a table", open_direct(d.fd, &data, ALLOC, 1));
        one(t, &r, "slot without a table", open_direct(d.fd, &data, 1, 2));
        t.rec("register 3 empty", res(r.register_files(&[-1, -1, -1])));
        one(t, &r, "into slot 1", open_direct(d.fd, &data, 2, 3));
        let mut buf = [0u8; 16];
        one(t, &r, "read slot 1", Sqe::read(1, buf.as_mut_ptr(), 16, 0, 4).flags(abi::IOSQE_FIXED_FILE));
        t.rec("data", buf[..7].to_vec());
        one(t, &r, "ALLOC", open_direct(d.fd, &data, ALLOC, 5));
        one(t, &r, "ALLOC", open_direct(d.fd, &data, ALLOC, 6));
        one(t, &r, "ALLOC, table full", open_direct(d.fd, &data, ALLOC, 7));
        one(t, &r, "slot 3 (out of range)", open_direct(d.fd, &data, 4, 8));
        one(t, &r, "missing file into slot 0", open_direct(d.fd, &c("missing"), 1, 9));
        one(t, &r, "close slot 1", close_slot(1, 10));
        one(t, &r, "ALLOC reuses it", open_direct(d.fd, &data, ALLOC, 11));
        one(t, &r, "replace slot 0", open_direct(d.fd, &data, 1, 12));
        one(t, &r, "close slot 0", close_slot(0, 13));
        let newf = c("created");
        one(
            t,
            &r,
            "O_CREAT into ALLOC",
            Sqe { op_flags: (libc::O_CREAT | libc::O_RDWR) as u32, len: 0o600, ..open_direct(d.fd, &newf, ALLOC, 14) },
        );
        t.rec("created", d.meta("created"));
        one(t, &r, "write via the new slot", Sqe::write(0, b"xyz".as_ptr(), 3, 0, 15).flags(abi::IOSQE_FIXED_FILE));
        t.rec("created contents", d.contents("created"));
        let how = How::default();
        one(t, &r, "OPENAT2 ALLOC, full", Sqe { file_index: ALLOC, ..openat2(d.fd, &data, &how, 24, 16) });
        one(t, &r, "close slot 2", close_slot(2, 17));
        one(t, &r, "OPENAT2 ALLOC", Sqe { file_index: ALLOC, ..openat2(d.fd, &data, &how, 24, 18) });
        // SAFETY: unregister takes no argument.
        t.rec("unregister", res(unsafe { r.register_raw(abi::reg::UNREGISTER_FILES, core::ptr::null_mut(), 0) }));

        // Sparse tables and allocation ranges.
        let mut rr: abi::io_uring_rsrc_register = unsafe_zeroed();
        rr.nr = 4;
        rr.flags = abi::IORING_RSRC_REGISTER_SPARSE;
        let size = core::mem::size_of::<abi::io_uring_rsrc_register>() as u32;
        let reg2 = |rr: &mut abi::io_uring_rsrc_register, size: u32| {
            // SAFETY: rr is a live struct; the call only reads it.
            res(unsafe { r.register_raw(abi::reg::FILES2, rr as *mut _ as *mut c_void, size) })
        };
        t.rec("FILES2 wrong size", reg2(&mut rr, size - 8));
        let mut bad = rr;
        bad.data = 1;
        t.rec("FILES2 sparse with data", reg2(&mut bad, size));
        let mut bad = rr;
        bad.resv2 = 1;
        t.rec("FILES2 resv2", reg2(&mut bad, size));
        let mut bad = rr;
        bad.flags = 2;
        t.rec("FILES2 unknown flag", reg2(&mut bad, size));
        t.rec("FILES2 sparse 4", reg2(&mut rr, size));
        one(t, &r, "ALLOC in sparse", open_direct(d.fd, &data, ALLOC, 19));
        let mut range = abi::io_uring_file_index_range { off: 2, len: 2, resv: 0 };
        let set_range = |range: &mut abi::io_uring_file_index_range| {
            // SAFETY: range is a live struct; the call only reads it.
            res(unsafe { r.register_raw(abi::reg::FILE_ALLOC_RANGE, range as *mut _ as *mut c_void, 0) })
        };
        t.rec("alloc range [2,4)", set_range(&mut range));
        one(t, &r, "ALLOC in range", open_direct(d.fd, &data, ALLOC, 20));
        one(t, &r, "ALLOC in range", open_direct(d.fd, &data, ALLOC, 21));
        one(t, &r, "ALLOC, range full", open_direct(d.fd, &data, ALLOC, 22));
        t.rec("alloc range beyond the table", set_range(&mut abi::io_uring_file_index_range { off: 3, len: 2, resv: 0 }));
        t.rec("alloc range resv", set_range(&mut abi::io_uring_file_index_range { off: 0, len: 1, resv: 1 }));
        // SAFETY: a null argument; the call must refuse it.
        t.rec("alloc range NULL", res(unsafe { r.register_raw(abi::reg::FILE_ALLOC_RANGE, core::ptr::null_mut(), 0) }));
        let mut range = abi::io_uring_file_index_range { off: 0, len: 1, resv: 0 };
        // SAFETY: range is a live struct; the call only reads it.
        t.rec("alloc range with nr 1", res(unsafe { r.register_raw(abi::reg::FILE_ALLOC_RANGE, &mut range as *mut _ as *mut c_void, 1) }));
        let mut up2: abi::io_uring_rsrc_update2 = unsafe_zeroed();
        let one_fd_arr = [-1i32];
        up2.offset = 3;
        up2.data = one_fd_arr.as_ptr() as u64;
        up2.nr = 1;
        let up2_size = core::mem::size_of::<abi::io_uring_rsrc_update2>() as u32;
        // SAFETY: up2 and the array are live; the call only reads them.
        t.rec("FILES_UPDATE2 empties slot 3", res(unsafe { r.register_raw(abi::reg::FILES_UPDATE2, &mut up2 as *mut _ as *mut c_void, up2_size) }));
        up2.resv = 1;
        // SAFETY: as above.
        t.rec("FILES_UPDATE2 resv", res(unsafe { r.register_raw(abi::reg::FILES_UPDATE2, &mut up2 as *mut _ as *mut c_void, up2_size) }));
        let mut buf = [0u8; 16];
        one(t, &r, "read slot 2", Sqe::read(2, buf.as_mut_ptr(), 16, 0, 23).flags(abi::IOSQE_FIXED_FILE));
        t.rec("data", buf[..7].to_vec());
        one(t, &r, "read emptied slot 3", Sqe::read(3, buf.as_mut_ptr(), 16, 0, 24).flags(abi::IOSQE_FIXED_FILE));
    });
}

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for the kernel's plain-integer structs.
    unsafe { core::mem::zeroed() }
}

// ---------------------------------------------------------------------------
// FILES_UPDATE as an op
// ---------------------------------------------------------------------------

fn files_update(fds: *const i32, nr: u32, offset: u32, user_data: u64) -> Sqe {
    Sqe { fd: -1, addr: fds as u64, len: nr, off: offset as u64, ..Sqe::new(op::FILES_UPDATE, user_data) }
}

#[test]
fn fs_files_update_op() {
    diff("fs_files_update_op", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("files-update");
        d.write("data", b"update");
        let f = d.open("data", libc::O_RDONLY);
        let fds = [f, -1, abi::IORING_REGISTER_FILES_SKIP];
        one(t, &r, "no table", files_update(fds.as_ptr(), 3, 0, 1));
        t.rec("register 4 empty", res(r.register_files(&[-1, -1, -1, -1])));
        one(t, &r, "update 3 from 0", files_update(fds.as_ptr(), 3, 0, 2));
        let mut buf = [0u8; 8];
        one(t, &r, "read slot 0", Sqe::read(0, buf.as_mut_ptr(), 6, 0, 3).flags(abi::IOSQE_FIXED_FILE));
        t.rec("data", buf[..6].to_vec());
        one(t, &r, "len 0", files_update(fds.as_ptr(), 0, 0, 4));
        one(t, &r, "op_flags", Sqe { op_flags: 1, ..files_update(fds.as_ptr(), 1, 0, 5) });
        one(t, &r, "splice_fd_in", Sqe { file_index: 1, ..files_update(fds.as_ptr(), 1, 0, 6) });
        one(t, &r, "IOSQE_FIXED_FILE", files_update(fds.as_ptr(), 1, 0, 7).flags(abi::IOSQE_FIXED_FILE));
        one(t, &r, "beyond the table", files_update(fds.as_ptr(), 2, 3, 8));
        one(t, &r, "offset overflow", files_update(fds.as_ptr(), 2, u32::MAX - 2, 9));
        one(t, &r, "unmapped array", files_update(guard_page() as *const i32, 1, 0, 10));
        let bad = [BAD_FD];
        one(t, &r, "bad fd", files_update(bad.as_ptr(), 1, 1, 11));
        let half = [f, BAD_FD];
        one(t, &r, "good then bad fd", files_update(half.as_ptr(), 2, 1, 12));
        let ring_fd = [r.fd];
        one(t, &r, "the ring's fd", files_update(ring_fd.as_ptr(), 1, 3, 13));
        let clear = [-1, -1, -1, -1];
        one(t, &r, "clear all", files_update(clear.as_ptr(), 4, 0, 14));
        let mut alloc = [f, f, f];
        let alloc_p = alloc.as_mut_ptr();
        one(t, &r, "ALLOC 3", files_update(alloc_p, 3, ALLOC, 15));
        t.rec("slots written back", alloc);
        let mut alloc2 = [f, f];
        let alloc2_p = alloc2.as_mut_ptr();
        one(t, &r, "ALLOC 2 with one free", files_update(alloc2_p, 2, ALLOC, 16));
        t.rec("first slot written back, second untouched", (alloc2[0], alloc2[1] == f));
        one(t, &r, "ALLOC, table full", files_update(alloc2.as_ptr(), 1, ALLOC, 17));
        one(t, &r, "close slot 2", close_slot(2, 18));
        let mut ro = Mem::new(page_size(), libc::PROT_READ | libc::PROT_WRITE);
        ro.bytes_mut()[..4].copy_from_slice(&f.to_ne_bytes());
        // SAFETY: making our own mapping read-only.
        unsafe { libc::mprotect(ro.ptr.cast(), page_size(), libc::PROT_READ) };
        one(t, &r, "ALLOC into a read-only array", files_update(ro.addr() as *const i32, 1, ALLOC, 19));
        let again = [f];
        one(t, &r, "slot freed again after EFAULT", files_update(again.as_ptr(), 1, 2, 20));
        close_fd(f);
    });
}

// ---------------------------------------------------------------------------
// STATX
// ---------------------------------------------------------------------------

fn statx_sqe(dfd: i32, path: &CString, flags: i32, mask: u32, buf: *mut libc::statx, user_data: u64) -> Sqe {
    Sqe { op_flags: flags as u32, len: mask, off: buf as u64, ..at(op::STATX, dfd, path, user_data) }
}

fn stx(s: &libc::statx) -> (u32, u16, u64, u32, u64) {
    (s.stx_mask & libc::STATX_BASIC_STATS, s.stx_mode, s.stx_size, s.stx_nlink, s.stx_blocks)
}

#[test]
fn fs_statx() {
    diff("fs_statx", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("statx");
        d.write("data", &pattern(5000, 1));
        std::os::unix::fs::symlink("data", d.p("lnk")).expect("symlink");
        let data = c("data");
        // SAFETY: statx is plain data.
        let mut sx: libc::statx = unsafe_zeroed();
        let all = libc::STATX_BASIC_STATS;
        one(t, &r, "statx file", statx_sqe(d.fd, &data, 0, all, &mut sx, 1));
        t.rec("fields", stx(&sx));
        sx = unsafe_zeroed();
        one(t, &r, "statx symlink followed", statx_sqe(d.fd, &c("lnk"), 0, all, &mut sx, 2));
        t.rec("fields", stx(&sx));
        sx = unsafe_zeroed();
        one(t, &r, "statx symlink NOFOLLOW", statx_sqe(d.fd, &c("lnk"), libc::AT_SYMLINK_NOFOLLOW, all, &mut sx, 3));
        t.rec("fields", stx(&sx));
        let f = d.open("data", libc::O_RDONLY);
        sx = unsafe_zeroed();
        one(t, &r, "AT_EMPTY_PATH on an fd", statx_sqe(f, &c(""), libc::AT_EMPTY_PATH, all, &mut sx, 4));
        t.rec("fields", stx(&sx));
        one(t, &r, "NULL path with AT_EMPTY_PATH", Sqe { addr: 0, ..statx_sqe(f, &data, libc::AT_EMPTY_PATH, all, &mut sx, 5) });
        one(t, &r, "empty path without AT_EMPTY_PATH", statx_sqe(f, &c(""), 0, all, &mut sx, 6));
        close_fd(f);
        one(t, &r, "missing", statx_sqe(d.fd, &c("missing"), 0, all, &mut sx, 7));
        one(t, &r, "unmapped buffer", statx_sqe(d.fd, &data, 0, all, guard_page() as *mut libc::statx, 8));
        one(t, &r, "NULL buffer", statx_sqe(d.fd, &data, 0, all, core::ptr::null_mut(), 9));
        one(t, &r, "buf_index", Sqe { buf_index: 1, ..statx_sqe(d.fd, &data, 0, all, &mut sx, 10) });
        one(t, &r, "splice_fd_in", Sqe { file_index: 1, ..statx_sqe(d.fd, &data, 0, all, &mut sx, 11) });
        one(t, &r, "IOSQE_FIXED_FILE", statx_sqe(0, &data, 0, all, &mut sx, 12).flags(abi::IOSQE_FIXED_FILE));
        one(t, &r, "unknown flag", statx_sqe(d.fd, &data, 0x4000_0000, all, &mut sx, 13));
        one(t, &r, "reserved mask bit", statx_sqe(d.fd, &data, 0, 0x8000_0000, &mut sx, 14));
        one(t, &r, "bad dirfd", statx_sqe(BAD_FD, &data, 0, all, &mut sx, 15));
        one(t, &r, "unmapped path", Sqe { addr: guard_page(), ..statx_sqe(d.fd, &data, 0, all, &mut sx, 16) });
    });
}

// ---------------------------------------------------------------------------
// MKDIRAT, RENAMEAT, UNLINKAT, SYMLINKAT, LINKAT
// ---------------------------------------------------------------------------

fn two(opcode: u8, dfd: i32, p1: &CString, dfd2: i32, p2: &CString, flags: u32, user_data: u64) -> Sqe {
    Sqe { len: dfd2 as u32, off: p2.as_ptr() as u64, op_flags: flags, ..at(opcode, dfd, p1, user_data) }
}

#[test]
fn fs_namespace_ops() {
    diff("fs_namespace_ops", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("names");
        d.write("f", b"file");
        let (f, sub) = (c("f"), c("sub"));
        // MKDIRAT
        one(t, &r, "mkdir 0750", Sqe { len: 0o750, ..at(op::MKDIRAT, d.fd, &sub, 1) });
        t.rec("sub", d.meta("sub"));
        one(t, &r, "mkdir again", Sqe { len: 0o750, ..at(op::MKDIRAT, d.fd, &sub, 2) });
        one(t, &r, "mkdir off", Sqe { off: 1, ..at(op::MKDIRAT, d.fd, &c("x"), 3) });
        one(t, &r, "mkdir op_flags", Sqe { op_flags: 1, ..at(op::MKDIRAT, d.fd, &c("x"), 4) });
        one(t, &r, "mkdir missing parent", at(op::MKDIRAT, d.fd, &c("no/x"), 5));
        one(t, &r, "mkdir empty path", at(op::MKDIRAT, d.fd, &c(""), 6));
        one(t, &r, "mkdir IOSQE_FIXED_FILE", at(op::MKDIRAT, 0, &c("x"), 7).flags(abi::IOSQE_FIXED_FILE));
        // RENAMEAT
        let g = c("g");
        one(t, &r, "rename f -> g", two(op::RENAMEAT, d.fd, &f, d.fd, &g, 0, 8));
        t.rec("f, g", (d.meta("f"), d.contents("g")));
        one(t, &r, "rename missing", two(op::RENAMEAT, d.fd, &f, d.fd, &g, 0, 9));
        d.write("h", b"other");
        let h = c("h");
        one(t, &r, "rename NOREPLACE onto a file", two(op::RENAMEAT, d.fd, &h, d.fd, &g, libc::RENAME_NOREPLACE, 10));
        one(t, &r, "rename unknown flag", two(op::RENAMEAT, d.fd, &h, d.fd, &g, 1 << 10, 11));
        one(t, &r, "rename buf_index", Sqe { buf_index: 1, ..two(op::RENAMEAT, d.fd, &h, d.fd, &g, 0, 12) });
        one(t, &r, "rename bad new path", Sqe { off: guard_page(), ..two(op::RENAMEAT, d.fd, &h, d.fd, &g, 0, 13) });
        one(t, &r, "rename EXCHANGE", two(op::RENAMEAT, d.fd, &h, d.fd, &g, libc::RENAME_EXCHANGE, 14));
        t.rec("g, h", (d.contents("g"), d.contents("h")));
        let subfd = d.open("sub", libc::O_RDONLY | libc::O_DIRECTORY);
        one(t, &r, "rename into sub via its fd", two(op::RENAMEAT, d.fd, &h, subfd, &c("moved"), 0, 15));
        close_fd(subfd);
        t.rec("moved", d.meta("sub/moved"));
        // SYMLINKAT
        let lnk = c("lnk");
        one(t, &r, "symlink", Sqe { off: lnk.as_ptr() as u64, ..at(op::SYMLINKAT, d.fd, &g, 16) });
        t.rec("lnk", std::fs::read_link(d.p("lnk")).map(|p| p.to_string_lossy().into_owned()).map_err(|e| e.raw_os_error()));
        one(t, &r, "symlink again", Sqe { off: lnk.as_ptr() as u64, ..at(op::SYMLINKAT, d.fd, &g, 17) });
        one(t, &r, "symlink len", Sqe { len: 1, off: lnk.as_ptr() as u64, ..at(op::SYMLINKAT, d.fd, &g, 18) });
        one(t, &r, "symlink empty target", Sqe { off: c("l2").as_ptr() as u64, ..at(op::SYMLINKAT, d.fd, &c(""), 19) });
        // LINKAT
        let g2 = c("g2");
        one(t, &r, "link g -> g2", two(op::LINKAT, d.fd, &g, d.fd, &g2, 0, 20));
        t.rec("g2", d.meta("g2"));
        one(t, &r, "link again", two(op::LINKAT, d.fd, &g, d.fd, &g2, 0, 21));
        one(t, &r, "link through symlink, FOLLOW", two(op::LINKAT, d.fd, &lnk, d.fd, &c("g3"), libc::AT_SYMLINK_FOLLOW as u32, 22));
        t.rec("g3", d.meta("g3"));
        one(t, &r, "link unknown flag", two(op::LINKAT, d.fd, &g, d.fd, &c("g4"), 1, 23));
        one(t, &r, "link splice_fd_in", Sqe { file_index: 1, ..two(op::LINKAT, d.fd, &g, d.fd, &c("g4"), 0, 24) });
        let gfd = d.open("g", libc::O_RDONLY);
        one(t, &r, "link AT_EMPTY_PATH", two(op::LINKAT, gfd, &c(""), d.fd, &c("g5"), libc::AT_EMPTY_PATH as u32, 25));
        one(t, &r, "link empty path without AT_EMPTY_PATH", two(op::LINKAT, gfd, &c(""), d.fd, &c("g6"), 0, 26));
        close_fd(gfd);
        // UNLINKAT
        one(t, &r, "unlink g2", at(op::UNLINKAT, d.fd, &g2, 27));
        t.rec("g2 gone, g links", (d.meta("g2"), d.meta("g")));
        one(t, &r, "unlink a dir", at(op::UNLINKAT, d.fd, &sub, 28));
        one(t, &r, "rmdir a non-empty dir", Sqe { op_flags: libc::AT_REMOVEDIR as u32, ..at(op::UNLINKAT, d.fd, &sub, 29) });
        one(t, &r, "rmdir a file", Sqe { op_flags: libc::AT_REMOVEDIR as u32, ..at(op::UNLINKAT, d.fd, &g, 30) });
        one(t, &r, "unlink sub/moved", at(op::UNLINKAT, d.fd, &c("sub/moved"), 31));
        one(t, &r, "rmdir sub", Sqe { op_flags: libc::AT_REMOVEDIR as u32, ..at(op::UNLINKAT, d.fd, &sub, 32) });
        t.rec("sub gone", d.meta("sub"));
        one(t, &r, "unlink missing", at(op::UNLINKAT, d.fd, &sub, 33));
        one(t, &r, "unlink bad flag", Sqe { op_flags: libc::AT_SYMLINK_NOFOLLOW as u32, ..at(op::UNLINKAT, d.fd, &g, 34) });
        one(t, &r, "unlink len", Sqe { len: 1, ..at(op::UNLINKAT, d.fd, &g, 35) });
        one(t, &r, "unlink off", Sqe { off: 1, ..at(op::UNLINKAT, d.fd, &g, 36) });
        one(t, &r, "unlink unmapped path", Sqe { addr: guard_page(), ..at(op::UNLINKAT, d.fd, &g, 37) });
        t.rec("g still there", d.meta("g"));
    });
}

// ---------------------------------------------------------------------------
// FALLOCATE, SYNC_FILE_RANGE, FTRUNCATE, FADVISE, MADVISE
// ---------------------------------------------------------------------------

fn on_fd(opcode: u8, fd: i32, user_data: u64) -> Sqe {
    Sqe { fd, ..Sqe::new(opcode, user_data) }
}

#[test]
fn fs_sync_alloc_advise() {
    diff("fs_sync_alloc_advise", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("alloc");
        d.write("f", b"");
        let f = d.open("f", libc::O_RDWR);
        let ro = d.open("f", libc::O_RDONLY);
        let pipe = Pipe::new(0);
        // FALLOCATE: addr = length, len = mode, off = offset.
        one(t, &r, "fallocate 8192", Sqe { addr: 8192, ..on_fd(op::FALLOCATE, f, 1) });
        t.rec("size", d.meta("f").map(|m| m.1));
        one(t, &r, "fallocate KEEP_SIZE", Sqe { addr: 4096, off: 8192, len: libc::FALLOC_FL_KEEP_SIZE as u32, ..on_fd(op::FALLOCATE, f, 2) });
        t.rec("size", d.meta("f").map(|m| m.1));
        one(t, &r, "fallocate bad mode", Sqe { addr: 4096, len: 0x4000_0000, ..on_fd(op::FALLOCATE, f, 3) });
        one(t, &r, "fallocate op_flags", Sqe { addr: 4096, op_flags: 1, ..on_fd(op::FALLOCATE, f, 4) });
        one(t, &r, "fallocate buf_index", Sqe { addr: 4096, buf_index: 1, ..on_fd(op::FALLOCATE, f, 5) });
        one(t, &r, "fallocate read-only fd", Sqe { addr: 4096, ..on_fd(op::FALLOCATE, ro, 6) });
        one(t, &r, "fallocate pipe", Sqe { addr: 4096, ..on_fd(op::FALLOCATE, pipe.w, 7) });
        one(t, &r, "fallocate length 0", on_fd(op::FALLOCATE, f, 8));
        one(t, &r, "fallocate bad fd", Sqe { addr: 4096, ..on_fd(op::FALLOCATE, BAD_FD, 9) });
        // SYNC_FILE_RANGE
        one(t, &r, "sync_file_range", Sqe { len: 4096, op_flags: libc::SYNC_FILE_RANGE_WRITE, ..on_fd(op::SYNC_FILE_RANGE, f, 10) });
        one(t, &r, "sync_file_range bad flags", Sqe { op_flags: 0x100, ..on_fd(op::SYNC_FILE_RANGE, f, 11) });
        one(t, &r, "sync_file_range addr", Sqe { addr: 1, ..on_fd(op::SYNC_FILE_RANGE, f, 12) });
        one(t, &r, "sync_file_range pipe", on_fd(op::SYNC_FILE_RANGE, pipe.w, 13));
        one(t, &r, "sync_file_range bad fd", on_fd(op::SYNC_FILE_RANGE, BAD_FD, 14));
        one(t, &r, "sync_file_range negative offset", Sqe { off: u64::MAX - 10, ..on_fd(op::SYNC_FILE_RANGE, f, 15) });
        // FTRUNCATE
        one(t, &r, "ftruncate 100", Sqe { off: 100, ..on_fd(op::FTRUNCATE, f, 16) });
        t.rec("size", d.meta("f").map(|m| m.1));
        one(t, &r, "ftruncate negative", Sqe { off: u64::MAX, ..on_fd(op::FTRUNCATE, f, 17) });
        one(t, &r, "ftruncate read-only fd", Sqe { off: 10, ..on_fd(op::FTRUNCATE, ro, 18) });
        one(t, &r, "ftruncate bad fd", Sqe { off: 10, ..on_fd(op::FTRUNCATE, BAD_FD, 19) });
        one(t, &r, "ftruncate bad fd, negative", Sqe { off: u64::MAX, ..on_fd(op::FTRUNCATE, BAD_FD, 20) });
        one(t, &r, "ftruncate len", Sqe { len: 1, ..on_fd(op::FTRUNCATE, f, 21) });
        one(t, &r, "ftruncate addr3", Sqe { addr3: 1, ..on_fd(op::FTRUNCATE, f, 22) });
        one(t, &r, "ftruncate op_flags", Sqe { op_flags: 1, ..on_fd(op::FTRUNCATE, f, 23) });
        one(t, &r, "ftruncate pipe", Sqe { off: 1, ..on_fd(op::FTRUNCATE, pipe.w, 24) });
        t.rec("size", d.meta("f").map(|m| m.1));
        t.rec("register", res(r.register_files(&[f])));
        one(t, &r, "ftruncate fixed", Sqe { off: 7, ..on_fd(op::FTRUNCATE, 0, 25) }.flags(abi::IOSQE_FIXED_FILE));
        t.rec("size", d.meta("f").map(|m| m.1));
        one(t, &r, "ftruncate fixed out of range", Sqe { off: 7, ..on_fd(op::FTRUNCATE, 1, 26) }.flags(abi::IOSQE_FIXED_FILE));
        // FADVISE: off = offset, addr (64-bit) or len = length.
        let adv = |a: i32| a as u32;
        one(t, &r, "fadvise DONTNEED", Sqe { len: 100, op_flags: adv(libc::POSIX_FADV_DONTNEED), ..on_fd(op::FADVISE, f, 27) });
        one(t, &r, "fadvise SEQUENTIAL", Sqe { op_flags: adv(libc::POSIX_FADV_SEQUENTIAL), ..on_fd(op::FADVISE, f, 28) });
        one(t, &r, "fadvise 64-bit length", Sqe { addr: 1 << 40, op_flags: adv(libc::POSIX_FADV_WILLNEED), ..on_fd(op::FADVISE, f, 29) });
        one(t, &r, "fadvise bad advice", Sqe { op_flags: 99, ..on_fd(op::FADVISE, f, 30) });
        one(t, &r, "fadvise pipe", Sqe { op_flags: adv(libc::POSIX_FADV_NORMAL), ..on_fd(op::FADVISE, pipe.r, 31) });
        one(t, &r, "fadvise bad fd", on_fd(op::FADVISE, BAD_FD, 32));
        one(t, &r, "fadvise buf_index", Sqe { buf_index: 1, ..on_fd(op::FADVISE, f, 33) });
        one(t, &r, "fadvise negative length", Sqe { addr: u64::MAX, ..on_fd(op::FADVISE, f, 34) });
        // MADVISE: addr, off (64-bit) or len = length.
        let mut m = Mem::rw(2 * page_size());
        m.bytes_mut().fill(0x5a);
        let ps = page_size() as u64;
        one(t, &r, "madvise DONTNEED 2 pages", Sqe { fd: -1, addr: m.addr(), len: 2 * ps as u32, op_flags: libc::MADV_DONTNEED as u32, ..Sqe::new(op::MADVISE, 35) });
        t.rec("zeroed", m.bytes().iter().all(|&b| b == 0));
        m.bytes_mut().fill(0x5a);
        one(t, &r, "madvise length in off", Sqe { fd: -1, addr: m.addr(), off: ps, op_flags: libc::MADV_DONTNEED as u32, ..Sqe::new(op::MADVISE, 36) });
        t.rec("first page zeroed, second kept", (m.bytes()[0], m.bytes()[ps as usize]));
        one(t, &r, "madvise bad advice", Sqe { fd: -1, addr: m.addr(), len: ps as u32, op_flags: 999, ..Sqe::new(op::MADVISE, 37) });
        one(t, &r, "madvise unaligned", Sqe { fd: -1, addr: m.addr() + 1, len: ps as u32, op_flags: libc::MADV_NORMAL as u32, ..Sqe::new(op::MADVISE, 38) });
        one(t, &r, "madvise buf_index", Sqe { fd: -1, addr: m.addr(), len: ps as u32, buf_index: 1, ..Sqe::new(op::MADVISE, 39) });
        one(t, &r, "madvise splice_fd_in", Sqe { fd: -1, addr: m.addr(), len: ps as u32, file_index: 1, ..Sqe::new(op::MADVISE, 40) });
        close_fd(f);
        close_fd(ro);
    });
}

// ---------------------------------------------------------------------------
// SPLICE and TEE
// ---------------------------------------------------------------------------

fn splice(fd_in: i32, off_in: i64, fd_out: i32, off_out: i64, len: u32, flags: u32, user_data: u64) -> Sqe {
    Sqe {
        fd: fd_out,
        addr: off_in as u64,
        off: off_out as u64,
        len,
        op_flags: flags,
        file_index: fd_in as u32,
        ..Sqe::new(op::SPLICE, user_data)
    }
}

/// Two chains that each start with a write to the same file: A's next
/// request (a SPLICE from an empty pipe) waits for B's (the write that fills
/// that pipe). Writes to one file go to workers one at a time, but the file
/// is free again once A's write is done, before A's splice runs (as io-wq
/// clears the hash before linked work): both chains complete.
#[test]
fn fs_chains_after_writes_to_one_file() {
    diff("fs_chains_after_writes_to_one_file", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("chainwrites", b"", libc::O_RDWR);
        let g = TempFile::new("chainsplice", b"", libc::O_RDWR);
        let p = Pipe::new(0);
        let data = pattern(64, 4);
        let sqes = [
            Sqe::write(f.fd, data.as_ptr(), 64, 0, 1).flags(abi::IOSQE_ASYNC | abi::IOSQE_IO_LINK),
            splice(p.r, -1, g.fd, 0, 16, 0, 2),
            Sqe::write(f.fd, data.as_ptr(), 64, 64, 3).flags(abi::IOSQE_ASYNC | abi::IOSQE_IO_LINK),
            Sqe::write(p.w, data.as_ptr(), 16, 0, 4),
        ];
        r.push_all(&sqes);
        let (n, c) = r.run(sqes.len() as u32, sqes.len());
        t.rec("submitted", res(n));
        t.rec("CQEs by user_data", shorts(&sorted(c)));
        t.rec("file f", f.contents());
        t.rec("file g", g.contents());
    });
}

/// Two requests punted in one submit while one worker is idle: a SPLICE
/// from an empty pipe (it blocks in its worker) and an FSYNC. The FSYNC
/// completes while the splice waits (each got a worker of its own; before,
/// both were handed to the one idle worker, which ran the splice and left
/// the FSYNC queued behind it until the pipe had data).
#[test]
fn fs_blocked_worker_holds_nothing_back() {
    diff("fs_blocked_worker_holds_nothing_back", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("blockedwq", b"", libc::O_RDWR);
        let g = TempFile::new("blockedwq-fsync", b"x", libc::O_RDWR);
        let p = Pipe::new(0);
        // A worker that has just gone idle.
        t.rec("warm-up FSYNC", r.one_short(&Sqe::fsync(g.fd, 0, 1)));
        std::thread::sleep(Duration::from_millis(50));
        r.push_all(&[splice(p.r, -1, f.fd, 0, 16, 0, 2), Sqe::fsync(g.fd, 0, 3)]);
        t.rec("submitted", res(r.submit(2)));
        t.rec("while the pipe is empty", shorts(&r.wait_cqes(1, Duration::from_secs(5))));
        write_fd(p.w, b"hello");
        t.rec("after a write to the pipe", shorts(&r.wait_cqes(1, Duration::from_secs(5))));
        t.rec("file", f.contents());
    });
}

/// A cancel right after a blocking request went to a worker: a SPLICE from
/// an empty pipe (or, every other round, an IOSQE_ASYNC read of one, which
/// the worker finds not ready and hands to the reactor), then at once an
/// ASYNC_CANCEL for it. Whether the worker
/// has started it or not, the cancel ends it: still queued (-ECANCELED,
/// cancel 0) or running (interrupted: -ERESTARTSYS as on 6.18, or -EINTR;
/// cancel -EALREADY). Only that the splice ends is compared: under load the
/// kernel's own results vary (a cancel that interrupts it and answers
/// -ENOENT, or answers -ERESTARTSYS itself). Before, a worker that had taken
/// it off the queue but not yet recorded it as running was invisible: the
/// cancel answered -ENOENT and the splice went on blocking (hit within 200
/// rounds under the `chaos` feature); and a read the cancel found running
/// (-EALREADY) was then armed in the reactor, where nothing ended it
/// (liburing's `io-cancel` hung so across fork, under `chaos`; the kernel's
/// io-wq has the same race in a narrower window, so for the read only
/// ringport is held to it). A round whose request is not finished within
/// 2 s fails; the pipe is then written to, to end it.
#[test]
fn fs_cancel_finds_work_a_worker_just_took() {
    diff("fs_cancel_finds_work_a_worker_just_took", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("canceltaken", b"", libc::O_RDWR);
        let mut buf = [0u8; 16];
        for i in 0..200 {
            let p = Pipe::new(0);
            if i % 2 == 0 {
                r.push(&splice(p.r, -1, f.fd, 0, 16, 0, 1));
            } else {
                // A worker's read of an empty pipe parks in the reactor:
                // a cancel that found it running must still end it.
                r.push(&Sqe::read(p.r, buf.as_mut_ptr(), 16, 0, 1).flags(abi::IOSQE_ASYNC));
            }
            r.submit(1);
            r.push(&Sqe { addr: 1, ..Sqe::new(op::ASYNC_CANCEL, 2) });
            r.submit(1);
            let got = sorted(r.wait_cqes(2, Duration::from_secs(2)));
            // The splice can only end by the cancel (its pipe is empty).
            let ok = matches!(got.as_slice(), [a, c] if (a.user_data, c.user_data) == (1, 2) && a.res < 0);
            // The kernel's io-wq can lose this race itself: a cancel that
            // finds the read running answers -EALREADY, and the read then
            // arms poll and waits on. ringport ends it.
            let must_end = i % 2 == 0 || b.name() == "ringport";
            if !ok && !must_end {
                write_fd(p.w, b"x");
                r.wait_cqes(2 - got.len(), Duration::from_secs(2));
                continue;
            }
            if !ok {
                write_fd(p.w, b"x");
                let mut all = shorts(&got);
                all.extend(shorts(&r.wait_cqes(1, Duration::from_secs(2))));
                t.rec("a round", all);
                break;
            }
        }
        t.rec("rounds done", true);
    });
}

fn tee(fd_in: i32, fd_out: i32, len: u32, flags: u32, user_data: u64) -> Sqe {
    Sqe { opcode: op::TEE, ..splice(fd_in, 0, fd_out, 0, len, flags, user_data) }
}

#[test]
fn fs_splice_tee() {
    diff("fs_splice_tee", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("splice");
        d.write("src", &pattern(64, 7));
        let f = d.open("src", libc::O_RDWR);
        let p1 = Pipe::new(0);
        let p2 = Pipe::new(0);
        one(t, &r, "file -> pipe, 16 at 0", splice(f, 0, p1.w, -1, 16, 0, 1));
        t.rec("pipe", read_fd(p1.r, 64));
        // A short splice fails the chain.
        assert!(r.push(&splice(f, 60, p1.w, -1, 16, 0, 2).flags(abi::IOSQE_IO_LINK)));
        assert!(r.push(&Sqe::nop(3)));
        t.rec("short splice + linked NOP", (r.submit(2), shorts(&r.wait_cqes(2, Duration::from_secs(5)))));
        t.rec("pipe", read_fd(p1.r, 64));
        write_fd(p1.w, b"xyz");
        one(t, &r, "pipe -> file at 100", splice(p1.r, -1, f, 100, 3, 0, 4));
        t.rec("file", d.contents("src").map(|v| v[96..].to_vec()));
        write_fd(p1.w, b"ab");
        one(t, &r, "offset on a pipe", splice(p1.r, 0, f, 0, 2, 0, 5));
        t.rec("pipe", read_fd(p1.r, 64));
        one(t, &r, "file position (-1 both ends)", splice(f, -1, p1.w, -1, 5, 0, 6));
        t.rec("pipe", read_fd(p1.r, 64));
        write_fd(p1.w, b"tee!");
        one(t, &r, "tee", tee(p1.r, p2.w, 4, 0, 7));
        t.rec("out, in", (read_fd(p2.r, 64), read_fd(p1.r, 64)));
        one(t, &r, "tee with off", Sqe { off: 1, ..tee(p1.r, p2.w, 4, 0, 8) });
        one(t, &r, "tee with splice_off_in", Sqe { addr: 1, ..tee(p1.r, p2.w, 4, 0, 9) });
        one(t, &r, "tee file -> pipe", tee(f, p2.w, 4, 0, 10));
        one(t, &r, "unknown flag", splice(f, 0, p1.w, -1, 4, 0x100, 11));
        one(t, &r, "bad fd_in", splice(BAD_FD, 0, p1.w, -1, 4, 0, 12));
        one(t, &r, "bad fd_out", splice(f, 0, BAD_FD, -1, 4, 0, 13));
        one(t, &r, "len 0", splice(f, 0, p1.w, -1, 0, 0, 14));
        one(t, &r, "len 0, bad fd_in", splice(BAD_FD, 0, p1.w, -1, 0, 0, 15));
        one(t, &r, "file -> file", splice(f, 0, f, 32, 4, 0, 16));
        one(t, &r, "NONBLOCK from an empty pipe", splice(p2.r, -1, p1.w, -1, 4, libc::SPLICE_F_NONBLOCK, 17));
        t.rec("register", res(r.register_files(&[f, -1])));
        one(t, &r, "fixed fd_in", splice(0, 0, p1.w, -1, 8, abi::SPLICE_F_FD_IN_FIXED, 18));
        t.rec("pipe", read_fd(p1.r, 64));
        one(t, &r, "fixed fd_in empty slot", splice(1, 0, p1.w, -1, 8, abi::SPLICE_F_FD_IN_FIXED, 19));
        one(t, &r, "fixed fd_in out of range", splice(5, 0, p1.w, -1, 8, abi::SPLICE_F_FD_IN_FIXED, 20));
        one(t, &r, "fixed fd_out", splice(p2.r, -1, 0, 0, 0, 0, 21).flags(abi::IOSQE_FIXED_FILE));
        // A splice from an empty pipe waits (in a worker) for data.
        assert!(r.push(&splice(p2.r, -1, p1.w, -1, 4, 0, 22)));
        t.rec("blocking splice submitted", r.submit(1));
        t.rec("CQEs before data", r.wait_cqes(1, Duration::from_millis(200)).len());
        write_fd(p2.w, b"wake");
        t.rec("CQE after data", shorts(&r.wait_cqes(1, Duration::from_secs(5))));
        t.rec("pipe", read_fd(p1.r, 64));
        close_fd(f);
    });
}

// ---------------------------------------------------------------------------
// Extended attributes
// ---------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)] // one per SQE field it sets
fn xattr(opcode: u8, fd: i32, name: u64, value: u64, len: u32, flags: u32, path: u64, user_data: u64) -> Sqe {
    Sqe { fd, addr: name, off: value, len, op_flags: flags, addr3: path, ..Sqe::new(opcode, user_data) }
}

#[test]
fn fs_xattr() {
    diff("fs_xattr", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("xattr");
        d.write("f", b"x");
        let f = d.open("f", libc::O_RDWR);
        let name = c("user.ringport");
        let n = name.as_ptr() as u64;
        let val = b"value1";
        let v = val.as_ptr() as u64;
        let mut buf = [0u8; 64];
        let bp = buf.as_mut_ptr() as u64;
        one(t, &r, "fsetxattr", xattr(op::FSETXATTR, f, n, v, 6, 0, 0, 1));
        one(t, &r, "fgetxattr", xattr(op::FGETXATTR, f, n, bp, 64, 0, 0, 2));
        t.rec("value", buf[..6].to_vec());
        one(t, &r, "fgetxattr size query", xattr(op::FGETXATTR, f, n, 0, 0, 0, 0, 3));
        one(t, &r, "fgetxattr too small", xattr(op::FGETXATTR, f, n, bp, 2, 0, 0, 4));
        one(t, &r, "fgetxattr unmapped buffer", xattr(op::FGETXATTR, f, n, guard_page(), 64, 0, 0, 5));
        one(t, &r, "fgetxattr flags", xattr(op::FGETXATTR, f, n, bp, 64, 1, 0, 6));
        one(t, &r, "fgetxattr missing", xattr(op::FGETXATTR, f, c("user.none").as_ptr() as u64, bp, 64, 0, 0, 7));
        one(t, &r, "fsetxattr CREATE existing", xattr(op::FSETXATTR, f, n, v, 6, libc::XATTR_CREATE as u32, 0, 8));
        one(t, &r, "fsetxattr REPLACE missing", xattr(op::FSETXATTR, f, c("user.new").as_ptr() as u64, v, 6, libc::XATTR_REPLACE as u32, 0, 9));
        one(t, &r, "fsetxattr unknown flag", xattr(op::FSETXATTR, f, n, v, 6, 4, 0, 10));
        one(t, &r, "fsetxattr empty name", xattr(op::FSETXATTR, f, c("").as_ptr() as u64, v, 6, 0, 0, 11));
        let long = c(&format!("user.{}", "n".repeat(300)));
        one(t, &r, "fsetxattr name too long", xattr(op::FSETXATTR, f, long.as_ptr() as u64, v, 6, 0, 0, 12));
        one(t, &r, "fsetxattr unmapped name", xattr(op::FSETXATTR, f, guard_page(), v, 6, 0, 0, 13));
        one(t, &r, "fsetxattr unmapped value", xattr(op::FSETXATTR, f, n, guard_page(), 6, 0, 0, 14));
        one(t, &r, "fsetxattr value too big", xattr(op::FSETXATTR, f, n, v, 70000, 0, 0, 15));
        one(t, &r, "fsetxattr no namespace", xattr(op::FSETXATTR, f, c("plain").as_ptr() as u64, v, 6, 0, 0, 16));
        one(t, &r, "fsetxattr bad fd", xattr(op::FSETXATTR, BAD_FD, n, v, 6, 0, 0, 17));
        let path = d.cpath("f");
        let p = path.as_ptr() as u64;
        let v2 = b"second".as_ptr() as u64;
        one(t, &r, "setxattr", xattr(op::SETXATTR, 0, n, v2, 6, 0, p, 18));
        buf = [0; 64];
        one(t, &r, "getxattr", xattr(op::GETXATTR, 0, n, bp, 64, 0, p, 19));
        t.rec("value", buf[..6].to_vec());
        one(t, &r, "getxattr empty path", xattr(op::GETXATTR, 0, n, bp, 64, 0, c("").as_ptr() as u64, 20));
        one(t, &r, "getxattr missing file", xattr(op::GETXATTR, 0, n, bp, 64, 0, d.cpath("none").as_ptr() as u64, 21));
        one(t, &r, "getxattr unmapped path", xattr(op::GETXATTR, 0, n, bp, 64, 0, guard_page(), 22));
        one(t, &r, "getxattr IOSQE_FIXED_FILE", xattr(op::GETXATTR, 0, n, bp, 64, 0, p, 23).flags(abi::IOSQE_FIXED_FILE));
        one(t, &r, "setxattr IOSQE_FIXED_FILE", xattr(op::SETXATTR, 0, n, v, 6, 0, p, 24).flags(abi::IOSQE_FIXED_FILE));
        t.rec("register", res(r.register_files(&[f])));
        buf = [0; 64];
        one(t, &r, "fgetxattr fixed", xattr(op::FGETXATTR, 0, n, bp, 64, 0, 0, 25).flags(abi::IOSQE_FIXED_FILE));
        t.rec("value", buf[..6].to_vec());
        close_fd(f);
    });
}

// ---------------------------------------------------------------------------
// PROBE and the Rust API
// ---------------------------------------------------------------------------

const FS_OPS: [u8; 22] = [
    op::FIXED_FD_INSTALL,
    op::OPENAT,
    op::OPENAT2,
    op::CLOSE,
    op::FILES_UPDATE,
    op::STATX,
    op::RENAMEAT,
    op::UNLINKAT,
    op::MKDIRAT,
    op::SYMLINKAT,
    op::LINKAT,
    op::FALLOCATE,
    op::FADVISE,
    op::MADVISE,
    op::SYNC_FILE_RANGE,
    op::FTRUNCATE,
    op::SPLICE,
    op::TEE,
    op::FGETXATTR,
    op::FSETXATTR,
    op::GETXATTR,
    op::SETXATTR,
];

#[test]
fn fs_probe() {
    diff("fs_probe", |b, t| {
        let Some(r) = ring(b, t, 2, 0) else { return };
        let mut buf = vec![0u8; 16 + 256 * 8];
        // SAFETY: buf is writable and large enough for 256 ops.
        t.rec("probe", res(unsafe { r.register_raw(abi::reg::PROBE, buf.as_mut_ptr().cast(), 256) }));
        for &o in &FS_OPS {
            let e = 16 + o as usize * 8;
            t.rec(format!("op {o} flags"), u16::from_ne_bytes([buf[e + 2], buf[e + 3]]));
        }
    });
}

/// Every builder of ringport's API makes the same SQE bytes as the
/// `io-uring` crate's builder of the same name.
#[test]
fn fs_builders_match_io_uring_crate() {
    use io_uring::{opcode as k, types as kt};
    use ringport_engine::{opcode as p, types as pt};
    fn kb(e: io_uring::squeue::Entry) -> [u8; 64] {
        // SAFETY: the crate's Entry is a 64-byte repr(C) io_uring_sqe.
        unsafe { core::mem::transmute(e) }
    }
    fn pb(e: ringport_engine::squeue::Entry) -> [u8; 64] {
        // SAFETY: io_uring_sqe is 64 bytes of plain integers.
        unsafe { core::mem::transmute_copy(e.as_raw()) }
    }
    let path = c("some/path");
    let pth = path.as_ptr();
    let path2 = c("other");
    let p2 = path2.as_ptr();
    let mut sx: libc::statx = unsafe_zeroed();
    let phow = pt::OpenHow::new().flags(2).mode(0o600).resolve(8);
    let fds = [3, 4];
    let v = b"v".as_ptr() as *const c_void;
    let buf = [0u8; 8].as_ptr() as *mut c_void;
    let pairs: Vec<(&str, [u8; 64], [u8; 64])> = vec![
        (
            "OpenAt",
            kb(k::OpenAt::new(kt::Fd(5), pth).flags(libc::O_CREAT).mode(0o644).build().user_data(1)),
            pb(p::OpenAt::new(pt::Fd(5), pth).flags(libc::O_CREAT).mode(0o644).build().user_data(1)),
        ),
        (
            "OpenAt file_index",
            kb(k::OpenAt::new(kt::Fd(5), pth).file_index(Some(kt::DestinationSlot::try_from_slot_target(7).unwrap())).build()),
            pb(p::OpenAt::new(pt::Fd(5), pth).file_index(Some(pt::DestinationSlot::try_from_slot_target(7).unwrap())).build()),
        ),
        (
            "OpenAt2 ALLOC",
            kb(k::OpenAt2::new(kt::Fd(5), pth, (&phow as *const pt::OpenHow).cast()).file_index(Some(kt::DestinationSlot::auto_target())).build()),
            pb(p::OpenAt2::new(pt::Fd(5), pth, &phow).file_index(Some(pt::DestinationSlot::auto_target())).build()),
        ),
        ("Close fd", kb(k::Close::new(kt::Fd(9)).build()), pb(p::Close::new(pt::Fd(9)).build())),
        ("Close fixed", kb(k::Close::new(kt::Fixed(3)).build()), pb(p::Close::new(pt::Fixed(3)).build())),
        (
            "FilesUpdate",
            kb(k::FilesUpdate::new(fds.as_ptr(), 2).offset(-1).build()),
            pb(p::FilesUpdate::new(fds.as_ptr(), 2).offset(-1).build()),
        ),
        (
            "Statx",
            kb(k::Statx::new(kt::Fd(5), pth, (&mut sx as *mut libc::statx).cast()).flags(0x100).mask(0x7ff).build()),
            pb(p::Statx::new(pt::Fd(5), pth, &mut sx).flags(0x100).mask(0x7ff).build()),
        ),
        (
            "Fallocate",
            kb(k::Fallocate::new(kt::Fixed(1), 4096).offset(8).mode(1).build()),
            pb(p::Fallocate::new(pt::Fixed(1), 4096).offset(8).mode(1).build()),
        ),
        (
            "Fadvise",
            kb(k::Fadvise::new(kt::Fd(4), 100, 4).offset(9).build()),
            pb(p::Fadvise::new(pt::Fd(4), 100, 4).offset(9).build()),
        ),
        ("Madvise", kb(k::Madvise::new(buf, 4096, 4).build()), pb(p::Madvise::new(buf, 4096, 4).build())),
        (
            "SyncFileRange",
            kb(k::SyncFileRange::new(kt::Fd(4), 100).offset(5).flags(2).build()),
            pb(p::SyncFileRange::new(pt::Fd(4), 100).offset(5).flags(2).build()),
        ),
        (
            "Splice fixed in",
            kb(k::Splice::new(kt::Fixed(2), -1, kt::Fd(7), 10, 99).flags(1).build()),
            pb(p::Splice::new(pt::Fixed(2), -1, pt::Fd(7), 10, 99).flags(1).build()),
        ),
        ("Tee", kb(k::Tee::new(kt::Fd(3), kt::Fd(4), 5).flags(2).build()), pb(p::Tee::new(pt::Fd(3), pt::Fd(4), 5).flags(2).build())),
        (
            "RenameAt",
            kb(k::RenameAt::new(kt::Fd(1), pth, kt::Fd(2), p2).flags(1).build()),
            pb(p::RenameAt::new(pt::Fd(1), pth, pt::Fd(2), p2).flags(1).build()),
        ),
        ("UnlinkAt", kb(k::UnlinkAt::new(kt::Fd(1), pth).flags(0x200).build()), pb(p::UnlinkAt::new(pt::Fd(1), pth).flags(0x200).build())),
        ("MkDirAt", kb(k::MkDirAt::new(kt::Fd(1), pth).mode(0o700).build()), pb(p::MkDirAt::new(pt::Fd(1), pth).mode(0o700).build())),
        ("SymlinkAt", kb(k::SymlinkAt::new(kt::Fd(1), pth, p2).build()), pb(p::SymlinkAt::new(pt::Fd(1), pth, p2).build())),
        (
            "LinkAt",
            kb(k::LinkAt::new(kt::Fd(1), pth, kt::Fd(2), p2).flags(0x400).build()),
            pb(p::LinkAt::new(pt::Fd(1), pth, pt::Fd(2), p2).flags(0x400).build()),
        ),
        (
            "FixedFdInstall",
            kb(k::FixedFdInstall::new(kt::Fixed(3), 1).build()),
            pb(p::FixedFdInstall::new(pt::Fixed(3), 1).build()),
        ),
        ("Ftruncate", kb(k::Ftruncate::new(kt::Fd(3), 77).build()), pb(p::Ftruncate::new(pt::Fd(3), 77).build())),
        ("FGetXattr", kb(k::FGetXattr::new(kt::Fd(3), pth, buf, 8).build()), pb(p::FGetXattr::new(pt::Fd(3), pth, buf, 8).build())),
        (
            "FSetXattr",
            kb(k::FSetXattr::new(kt::Fd(3), pth, v, 1).flags(1).build()),
            pb(p::FSetXattr::new(pt::Fd(3), pth, v, 1).flags(1).build()),
        ),
        ("GetXattr", kb(k::GetXattr::new(pth, buf, p2, 8).build()), pb(p::GetXattr::new(pth, buf, p2, 8).build())),
        ("SetXattr", kb(k::SetXattr::new(pth, v, p2, 1).flags(2).build()), pb(p::SetXattr::new(pth, v, p2, 1).flags(2).build())),
    ];
    let mut bad = Vec::new();
    for (name, kbytes, pbytes) in &pairs {
        if kbytes != pbytes {
            bad.push(format!("{name}: io-uring {kbytes:?}\n  ringport {pbytes:?}"));
        }
    }
    assert!(bad.is_empty(), "builders differ:\n{}", bad.join("\n"));
    println!("{} builders make the io-uring crate's SQEs", pairs.len());
}

/// The Rust API end to end: open, statx, read and close through ringport's
/// own builders, checked against the file.
#[test]
fn fs_api_roundtrip() {
    use ringport_engine::{opcode as p, types as pt};
    let d = Dir::new("api");
    d.write("f", b"api data");
    let mut ring = ringport_engine::IoUring::new(8).expect("ring");
    let name = c("f");
    let mut sx: libc::statx = unsafe_zeroed();
    let mut buf = [0u8; 16];
    ring.submitter().register_files(&[-1, -1]).expect("register");
    let entries = [
        p::OpenAt::new(pt::Fd(d.fd), name.as_ptr())
            .file_index(Some(pt::DestinationSlot::try_from_slot_target(1).unwrap()))
            .build()
            .user_data(1)
            .flags(ringport_engine::squeue::Flags::IO_LINK),
        p::Read::new(pt::Fixed(1), buf.as_mut_ptr(), 8).build().user_data(2).flags(ringport_engine::squeue::Flags::IO_LINK),
        p::Statx::new(pt::Fd(d.fd), name.as_ptr(), &mut sx).mask(libc::STATX_SIZE).build().user_data(3).flags(ringport_engine::squeue::Flags::IO_LINK),
        p::Close::new(pt::Fixed(1)).build().user_data(4),
    ];
    for e in &entries {
        // SAFETY: the buffers outlive the ring's use of them.
        unsafe { ring.submission().push(e).expect("push") };
    }
    ring.submit_and_wait(4).expect("submit");
    let mut got: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
    got.sort();
    assert_eq!(got, vec![(1, 0), (2, 8), (3, 0), (4, 0)]);
    assert_eq!(&buf[..8], b"api data");
    assert_eq!(sx.stx_size, 8);
}

// ---------------------------------------------------------------------------
// File times
// ---------------------------------------------------------------------------

/// The file's modification time, looked at (which, since Linux 6.13,
/// makes its next write take a fine-grained timestamp).
fn mtime_ns(fd: i32) -> i128 {
    let mut x = unsafe_zeroed::<libc::statx>();
    // SAFETY: an empty path with AT_EMPTY_PATH names fd; x is a valid out-pointer.
    assert_eq!(unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_MTIME, &mut x) }, 0);
    x.stx_mtime.tv_sec as i128 * 1_000_000_000 + x.stx_mtime.tv_nsec as i128
}

fn realtime_ns() -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

// The engine never looks at a file's times. With multigrain timestamps
// (Linux 6.13+), a write after someone looked at the times takes a
// fine-grained timestamp; later writes within the same clock tick, nobody
// having looked, leave the time alone (so an fsync has no inode to write).
// Looked at, then six writes through the ring: the time must still be the
// first write's, unless a clock tick passed meanwhile (rare; 10 trials).
#[test]
fn fs_writes_leave_times_alone() {
    diff("fs_writes_leave_times_alone", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let f = TempFile::new("mgtime", b"", libc::O_RDWR | libc::O_CLOEXEC);
        let buf = [7u8; 512];
        let mut kept = 0;
        for _ in 0..10 {
            mtime_ns(f.fd);
            let a = realtime_ns();
            let (_, c) = r.one(&Sqe::write(f.fd, buf.as_ptr(), 512, 0, 1));
            let b = realtime_ns();
            assert_eq!(c.map(|c| c.res), Some(512));
            for i in 1..6u64 {
                let (_, c) = r.one(&Sqe::write(f.fd, buf.as_ptr(), 512, i * 512, 1));
                assert_eq!(c.map(|c| c.res), Some(512));
            }
            let m = mtime_ns(f.fd);
            if a <= m && m <= b {
                kept += 1;
            }
        }
        t.rec("times left alone in most trials", kept >= 5);
    });
}

/// Some of the kernel's ops set an error result without marking the
/// request failed (path ops, xattr ops, STATX, MADVISE, FSYNC,
/// SYNC_FILE_RANGE, FALLOCATE, FTRUNCATE): with CQE_SKIP_SUCCESS a failed
/// one posts no CQE, and a link after one still runs. A bad fd for one that
/// needs a file, and other ops (OPENAT, FADVISE), are marked failed.
#[test]
fn fs_errors_that_do_not_fail_the_request() {
    diff("fs_errors_that_do_not_fail_the_request", |b, t| {
        let Some(r) = ring(b, t, 8, 0) else { return };
        let d = Dir::new("nofail");
        d.write("f", b"x");
        let (f, missing, name) = (c("f"), c("missing"), c("user.none"));
        let full = c(d.p("f").to_str().expect("utf-8 temp path"));
        let p = Pipe::new(0);
        let mut stx = vec![0u8; 256];
        let skip = abi::IOSQE_CQE_SKIP_SUCCESS;
        let fails = [
            ("mkdirat existing", at(op::MKDIRAT, d.fd, &f, 1)),
            ("unlinkat missing", at(op::UNLINKAT, d.fd, &missing, 2)),
            ("renameat missing", Sqe { len: d.fd as u32, off: f.as_ptr() as u64, ..at(op::RENAMEAT, d.fd, &missing, 3) }),
            ("symlinkat onto existing", Sqe { off: f.as_ptr() as u64, ..at(op::SYMLINKAT, d.fd, &f, 4) }),
            ("linkat missing", Sqe { len: d.fd as u32, off: f.as_ptr() as u64, ..at(op::LINKAT, d.fd, &missing, 5) }),
            ("getxattr missing", Sqe { addr: name.as_ptr() as u64, addr3: full.as_ptr() as u64, ..Sqe::new(op::GETXATTR, 6) }),
            ("fgetxattr missing", Sqe { fd: d.fd, addr: name.as_ptr() as u64, len: 0, ..Sqe::new(op::FGETXATTR, 7) }),
            ("fsync bad fd", Sqe::fsync(BAD_FD, 0, 8)),
            ("fsync a pipe", Sqe::fsync(p.r, 0, 10)),
            ("mkdirat bad dirfd", at(op::MKDIRAT, BAD_FD, &missing, 17)),
            ("fgetxattr bad fd", Sqe { fd: BAD_FD, addr: name.as_ptr() as u64, ..Sqe::new(op::FGETXATTR, 18) }),
            ("ftruncate bad fd", Sqe { fd: BAD_FD, off: 1, ..Sqe::new(op::FTRUNCATE, 19) }),
            ("sync_file_range a pipe", Sqe { fd: p.r, len: 1, ..Sqe::new(op::SYNC_FILE_RANGE, 11) }),
            ("fallocate a pipe", Sqe { fd: p.w, addr: 4096, ..Sqe::new(op::FALLOCATE, 12) }),
            ("ftruncate a pipe", Sqe { fd: p.w, off: 1, ..Sqe::new(op::FTRUNCATE, 13) }),
            ("statx missing", Sqe { off: stx.as_mut_ptr() as u64, len: libc::STATX_BASIC_STATS, ..at(op::STATX, d.fd, &missing, 14) }),
            ("madvise bad advice", Sqe { addr: stx.as_ptr() as u64 & !4095, len: 4096, op_flags: 77, ..Sqe::new(op::MADVISE, 15) }),
            ("fadvise bad advice", Sqe { fd: d.fd, len: 1, op_flags: 77, ..Sqe::new(op::FADVISE, 16) }),
            ("openat missing", at(op::OPENAT, d.fd, &missing, 9)),
        ];
        for (label, sqe) in fails {
            // Alone, with CQE_SKIP_SUCCESS.
            assert!(r.push(&sqe.flags(skip)));
            r.submit(1);
            t.rec(format!("{label}, skip-success"), shorts(&r.wait_cqes(1, Duration::from_millis(200))));
            // At the head of a link: does the NOP after it run?
            assert!(r.push(&sqe.flags(abi::IOSQE_IO_LINK)));
            assert!(r.push(&Sqe::nop(100)));
            r.submit(2);
            t.rec(format!("{label}, linked"), shorts(&sorted(r.wait_cqes(2, Duration::from_secs(2)))));
        }
    });
}
