//! Test files, aligned buffers and the offset generator.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Page alignment, enough for O_DIRECT on every common file system.
pub const ALIGN: usize = 4096;

/// `count` buffers of `size` bytes each, page-aligned, in one allocation.
pub struct Buffers {
    ptr: *mut u8,
    layout: std::alloc::Layout,
    size: usize,
}

// SAFETY: Buffers owns its allocation; the loops hand out raw pointers only
// to ops that complete before the Buffers is dropped.
unsafe impl Send for Buffers {}

impl Buffers {
    /// Allocates and fills the buffers with a non-zero pattern.
    pub fn new(count: usize, size: usize) -> Buffers {
        let size = size.max(1).next_multiple_of(ALIGN);
        let layout = std::alloc::Layout::from_size_align(size * count.max(1), ALIGN).expect("buffer layout");
        // SAFETY: layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: ptr is valid for layout.size() bytes.
        unsafe { core::ptr::write_bytes(ptr, 0xa5, layout.size()) };
        Buffers { ptr, layout, size }
    }
    /// The i-th buffer.
    #[inline]
    pub fn get(&self, i: usize) -> *mut u8 {
        debug_assert!((i + 1) * self.size <= self.layout.size());
        // SAFETY: in bounds of the allocation (checked in debug builds;
        // the loops only use slot indices below `count`).
        unsafe { self.ptr.add(i * self.size) }
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: allocated in new with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// xorshift64*: a fast, reproducible offset generator. Every backend gets
/// the same seed, so the same sequence of offsets.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    /// A value in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) * n) >> 32
    }
}

/// Takes over `fd`, a descriptor a parent `ringport bench` let this process
/// inherit: it is made close-on-exec again, and closed when the `File` is
/// dropped. Fails if `fd` is not open, or is one of the standard streams.
pub fn adopt_fd(fd: RawFd) -> io::Result<File> {
    if fd <= 2 {
        return Err(io::Error::other(format!("descriptor {fd} is a standard stream, not a test file")));
    }
    // SAFETY: F_SETFD on a descriptor number only changes its flags, or
    // fails with EBADF if it is not open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::other(format!("descriptor {fd}: {}", io::Error::last_os_error())));
    }
    // SAFETY: fd is open (checked above) and was handed to this process for
    // this use alone; nothing else here owns or closes it.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// A temporary file. Its name is removed as soon as it is written, so that
/// nothing is left behind even if the run is killed; the open descriptor
/// keeps it alive until dropped.
pub struct TempFile {
    path: PathBuf,
    file: File,
    /// Its size in bytes.
    pub size: u64,
}

impl TempFile {
    /// Creates `size` bytes of pattern data in `dir`, synced to disk.
    pub fn create(dir: &Path, tag: &str, size: u64) -> io::Result<TempFile> {
        let path = dir.join(format!("ringport-bench-{}-{tag}", std::process::id()));
        let mut file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let removed = std::fs::remove_file(&path);
        let tf = TempFile { path, file: file.try_clone()?, size };
        removed?;
        let mut chunk = vec![0u8; 1 << 20];
        let mut rng = Rng::new(size);
        for b in chunk.iter_mut() {
            *b = rng.below(256) as u8;
        }
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        Ok(tf)
    }
    /// Takes over `fd`, a descriptor of a test file of `size` bytes that a
    /// parent `ringport bench` let this process inherit (the
    /// `ringport-trapped` worker): see [`adopt_fd`].
    pub fn adopt(fd: RawFd, size: u64) -> io::Result<TempFile> {
        let file = adopt_fd(fd)?;
        Ok(TempFile { path: PathBuf::from(format!("/proc/self/fd/{fd}")), file, size })
    }
    /// The buffered descriptor.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    /// The path the file was created at (its name is already removed).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Reads the whole file once, so that it is in the page cache.
    pub fn warm_page_cache(&self) -> io::Result<()> {
        let buf = Buffers::new(1, 1 << 20);
        let mut off = 0u64;
        while off < self.size {
            // SAFETY: buf holds 1 MiB.
            let n = unsafe { libc::pread(self.fd(), buf.get(0).cast(), 1 << 20, off as libc::off_t) };
            if n <= 0 {
                return Err(if n < 0 { io::Error::last_os_error() } else { io::Error::other("short file") });
            }
            off += n as u64;
        }
        Ok(())
    }
    /// Opens the file again with O_DIRECT (through /proc/self/fd, as it has
    /// no name) and checks one aligned read works. The error says why
    /// O_DIRECT is refused.
    pub fn open_direct(&self) -> io::Result<File> {
        let proc_path = format!("/proc/self/fd/{}", self.fd());
        let f = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(proc_path)?;
        let buf = Buffers::new(1, ALIGN);
        // SAFETY: buf holds ALIGN bytes, aligned to ALIGN.
        let n = unsafe { libc::pread(f.as_raw_fd(), buf.get(0).cast(), ALIGN, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f)
    }
}

