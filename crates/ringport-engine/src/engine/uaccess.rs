//! Fault-safe access to program memory, the engine's `copy_from_user`.
//!
//! Pointers that arrive in SQEs or syscall arguments are untrusted: the engine
//! reads and writes through them only with `process_vm_readv`/`writev` on its
//! own pid, which the kernel checks page by page and answers with EFAULT
//! instead of a crash. Buffers that the kernel itself fills (the data of a
//! read) are handed straight to the syscall, which faults the same way.

use super::Errno;

fn vm_copy(local: *mut u8, remote: u64, len: usize, write: bool) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    if remote == 0 || remote.checked_add(len as u64).is_none() {
        return Err(Errno(libc::EFAULT));
    }
    let l = libc::iovec { iov_base: local.cast(), iov_len: len };
    let r = libc::iovec { iov_base: remote as usize as *mut libc::c_void, iov_len: len };
    // SAFETY: the local iovec covers memory the caller owns; the remote one
    // is checked by the kernel, which returns EFAULT for unmapped pages.
    let n = unsafe {
        if write {
            libc::process_vm_writev(libc::getpid(), &l, 1, &r, 1, 0)
        } else {
            libc::process_vm_readv(libc::getpid(), &l, 1, &r, 1, 0)
        }
    };
    if n == len as isize {
        Ok(())
    } else if n < 0 && Errno::last().0 != libc::EFAULT {
        // process_vm_* refused outright (seccomp, ENOSYS): fall back to a
        // pipe, whose read/write also fault-check the program's memory.
        pipe_copy(local, remote, len, write)
    } else {
        Err(Errno(libc::EFAULT))
    }
}

/// Copies through a pipe in chunks: `write` from the source faults with
/// EFAULT on a bad address, as does `read` into the destination.
fn pipe_copy(local: *mut u8, remote: u64, len: usize, write_remote: bool) -> Result<(), Errno> {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid 2-int array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Errno::last());
    }
    let (src, dst) = if write_remote {
        (local as usize, remote as usize)
    } else {
        (remote as usize, local as usize)
    };
    let mut done = 0usize;
    let mut res = Ok(());
    while done < len {
        let chunk = (len - done).min(4096);
        // SAFETY: writing from src+done; the kernel checks the address.
        let w = unsafe { libc::write(p[1], (src + done) as *const libc::c_void, chunk) };
        if w <= 0 {
            res = Err(Errno(libc::EFAULT));
            break;
        }
        // SAFETY: reading into dst+done; the kernel checks the address.
        let r = unsafe { libc::read(p[0], (dst + done) as *mut libc::c_void, w as usize) };
        if r != w {
            res = Err(Errno(libc::EFAULT));
            break;
        }
        done += w as usize;
    }
    // SAFETY: closing the two fds we created.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    res
}

/// Copies `dst.len()` bytes from program address `src`.
pub(crate) fn copy_in(dst: &mut [u8], src: u64) -> Result<(), Errno> {
    vm_copy(dst.as_mut_ptr(), src, dst.len(), false)
}

/// Copies `src` to program address `dst`.
pub(crate) fn copy_out(dst: u64, src: &[u8]) -> Result<(), Errno> {
    vm_copy(src.as_ptr() as *mut u8, dst, src.len(), true)
}

/// The outcome of [`read_str`].
pub(crate) enum Str {
    /// The bytes before the terminating NUL.
    Found(Vec<u8>),
    /// No NUL within the limit.
    TooLong,
}

/// The kernel's `strncpy_from_user`: reads a NUL-terminated string from
/// program memory, at most `max` bytes (NUL included). Page by page, so a
/// string that ends before an unmapped page is read whole, and a fault
/// before the NUL is EFAULT.
pub(crate) fn read_str(src: u64, max: usize) -> Result<Str, Errno> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut cur = src;
    while out.len() < max {
        let in_page = (PAGE - cur % PAGE) as usize;
        let n = in_page.min(max - out.len());
        let start = out.len();
        out.resize(start + n, 0);
        copy_in(&mut out[start..], cur)?;
        if let Some(i) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + i);
            return Ok(Str::Found(out));
        }
        cur = cur.checked_add(n as u64).ok_or(Errno(libc::EFAULT))?;
    }
    Ok(Str::TooLong)
}

/// The kernel's `getname`: a path of at most `PATH_MAX` bytes (NUL
/// included). ENAMETOOLONG when longer, ENOENT when empty unless
/// `empty_ok` (LOOKUP_EMPTY, from AT_EMPTY_PATH), EFAULT on a bad pointer.
pub(crate) fn read_path(src: u64, empty_ok: bool) -> Result<std::ffi::CString, Errno> {
    match read_str(src, libc::PATH_MAX as usize)? {
        Str::TooLong => Err(Errno(libc::ENAMETOOLONG)),
        Str::Found(v) if v.is_empty() && !empty_ok => Err(Errno(libc::ENOENT)),
        // The bytes hold no NUL by construction.
        Str::Found(v) => std::ffi::CString::new(v).map_err(|_| Errno(libc::EINVAL)),
    }
}

/// Reads one plain-data `T` (every bit pattern valid) from program memory.
///
/// # Safety
/// `T` must be a plain-old-data type: any byte pattern is a valid `T`.
pub(crate) unsafe fn read_pod<T: Copy>(src: u64) -> Result<T, Errno> {
    let mut v = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the slice covers exactly the MaybeUninit's storage.
    let bytes = unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, core::mem::size_of::<T>()) };
    copy_in(bytes, src)?;
    // SAFETY: fully initialised by copy_in; T is POD per the contract.
    Ok(unsafe { v.assume_init() })
}

/// Reads `n` plain-data `T`s from program memory.
///
/// # Safety
/// As [`read_pod`].
pub(crate) unsafe fn read_pod_vec<T: Copy>(src: u64, n: usize) -> Result<Vec<T>, Errno> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let bytes_len = n.checked_mul(core::mem::size_of::<T>()).ok_or(Errno(libc::EFAULT))?;
    // SAFETY: the capacity covers bytes_len bytes.
    let bytes = unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, bytes_len) };
    copy_in(bytes, src)?;
    // SAFETY: all n elements were initialised by copy_in; T is POD.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Writes one plain-data `T` to program memory.
pub(crate) fn write_pod<T: Copy>(dst: u64, v: &T) -> Result<(), Errno> {
    // SAFETY: viewing a T as its bytes for copying out.
    let bytes = unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) };
    copy_out(dst, bytes)
}

/// True when `[addr, addr+len)` is entirely mapped (mincore reports ENOMEM
/// for any hole), without touching the memory.
pub(crate) fn is_mapped(addr: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    let page = 4096u64;
    let start = addr & !(page - 1);
    let Some(end) = addr.checked_add(len) else { return false };
    let pages = (end - start).div_ceil(page) as usize;
    let mut vec = vec![0u8; pages.min(1 << 20)];
    let mut off = 0usize;
    while off < pages {
        let n = (pages - off).min(vec.len());
        // SAFETY: mincore only reads the mapping table; vec has n bytes.
        let r = unsafe {
            libc::mincore((start + off as u64 * page) as usize as *mut libc::c_void, n * page as usize, vec.as_mut_ptr())
        };
        if r != 0 {
            return false;
        }
        off += n;
    }
    true
}

/// True when `[addr, addr+len)` is memory the kernel could pin for long-term
/// writing (`FOLL_WRITE | FOLL_LONGTERM`): mapped, writable, and not a shared
/// mapping of an ordinary file (shared memory — memfd, /dev/shm, SysV — is
/// fine). Read from /proc/self/maps.
pub(crate) fn is_pinnable(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else { return false };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return is_mapped(addr, len) };
    let mut cur = addr;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        let Some((lo, hi)) = range.split_once('-') else { continue };
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else { continue };
        if hi <= cur || lo > cur {
            continue;
        }
        let path = f.nth(3).unwrap_or("");
        let shmem = path.is_empty()
            || path.starts_with('[')
            || path.starts_with("/memfd:")
            || path.starts_with("/dev/shm/")
            || path.starts_with("/SYSV")
            || path == "/dev/zero";
        let p = perms.as_bytes();
        if p.get(1) != Some(&b'w') || (p.get(3) == Some(&b's') && !shmem) {
            return false;
        }
        cur = hi;
        if cur >= end {
            return true;
        }
    }
    false
}
