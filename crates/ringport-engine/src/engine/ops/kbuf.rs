//! Provided buffers (the kernel's io_uring/kbuf.c): PROVIDE_BUFFERS,
//! REMOVE_BUFFERS, ring-mapped buffer groups (IORING_REGISTER_PBUF_RING),
//! and the buffer selection that IOSQE_BUFFER_SELECT requests do at issue.
//!
//! A group is either *legacy* (buffers handed over by PROVIDE_BUFFERS, kept
//! here, used first-in first-out) or *ring-mapped* (a ring of
//! `io_uring_buf` entries in program memory: the program writes entries
//! and the tail, the engine keeps the head). The ring lives in untrusted
//! memory: the engine reads it only through fault-checked copies, masks
//! every index, and an unreadable ring just looks empty (ENOBUFS).
//!
//! A request holds the group table's lock from selection to the end of its
//! attempt (the kernel's `uring_lock` does the same for inline issue), so a
//! buffer given back after EAGAIN goes back exactly where it was.

use crate::abi;
use crate::engine::opdef::{Issue, Mode, OpData, Req};
use crate::engine::{uaccess, Ctx, Errno, Sqe};
use std::collections::{HashMap, VecDeque};
use std::sync::MutexGuard;

/// The kernel's `MAX_BIDS_PER_BGID`.
const MAX_BIDS: u64 = 1 << 16;
/// The kernel's `MAX_RW_COUNT`.
const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !4095;
/// Highest user address + 1 (the kernel's `access_ok` bound).
const TASK_SIZE: u64 = (1 << 47) - 4096;
/// Size of one `io_uring_buf` ring entry.
const ENTRY: u64 = core::mem::size_of::<linux_raw_sys::io_uring::io_uring_buf>() as u64;

/// Opcode numbers of this family.
pub(crate) mod code {
    use linux_raw_sys::io_uring::io_uring_op as o;
    /// `IORING_OP_PROVIDE_BUFFERS`
    pub const PROVIDE_BUFFERS: u8 = o::IORING_OP_PROVIDE_BUFFERS as u8;
    /// `IORING_OP_REMOVE_BUFFERS`
    pub const REMOVE_BUFFERS: u8 = o::IORING_OP_REMOVE_BUFFERS as u8;
}

/// One buffer handed over by PROVIDE_BUFFERS.
#[derive(Clone, Copy, Debug)]
struct Legacy {
    addr: u64,
    len: u32,
    bid: u16,
}

/// A ring-mapped group.
#[derive(Debug)]
struct Mapped {
    /// Program address of the ring (page aligned).
    addr: u64,
    /// Entries - 1 (entries is a power of two below 65536).
    mask: u32,
    /// The consumer index, kept by the engine.
    head: u16,
}

#[derive(Debug)]
enum Group {
    Legacy(VecDeque<Legacy>),
    Ring(Mapped),
}

/// A ring's buffer groups, by group id.
#[derive(Default)]
pub(crate) struct Table {
    groups: HashMap<u16, Group>,
}

/// A buffer taken for one attempt: given back with [`Table::recycle`] if
/// the attempt transferred nothing, else kept (its id goes in the CQE).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Picked {
    /// Where to transfer.
    pub addr: u64,
    /// How much (the request's length, capped by the buffer's).
    pub len: u32,
    /// The buffer id.
    pub bid: u16,
    bgid: u16,
    /// The legacy buffer's full length (to give it back whole).
    full: Option<u32>,
}

impl Picked {
    /// The CQE flags that report this buffer.
    pub fn cqe_flags(&self) -> u32 {
        abi::IORING_CQE_F_BUFFER | (self.bid as u32) << abi::IORING_CQE_BUFFER_SHIFT
    }
}

/// Locks `ctx`'s group table.
pub(crate) fn lock(ctx: &Ctx) -> MutexGuard<'_, Table> {
    ctx.kbufs.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    /// Takes the next buffer of group `bgid` for a transfer of up to `len`
    /// bytes (0: the whole buffer). None: the group has none (ENOBUFS).
    pub fn select(&mut self, bgid: u16, len: u32) -> Option<Picked> {
        let cap = |blen: u32| if len == 0 || len > blen { blen } else { len };
        match self.groups.get_mut(&bgid)? {
            Group::Legacy(list) => {
                let b = list.pop_front()?;
                Some(Picked { addr: b.addr, len: cap(b.len), bid: b.bid, bgid, full: Some(b.len) })
            }
            Group::Ring(r) => {
                // SAFETY: u16 is plain data; the address is fault-checked.
                let tail: u16 = unsafe { uaccess::read_pod(r.addr + 14) }.ok()?;
                if tail == r.head {
                    return None;
                }
                let slot = (r.head as u32 & r.mask) as u64;
                // SAFETY: io_uring_buf is plain data; fault-checked copy
                // of an entry inside the registered ring (index masked).
                let e: linux_raw_sys::io_uring::io_uring_buf = unsafe { uaccess::read_pod(r.addr + slot * ENTRY) }.ok()?;
                r.head = r.head.wrapping_add(1);
                Some(Picked { addr: e.addr, len: cap(e.len), bid: e.bid, bgid, full: None })
            }
        }
    }

    /// True when group `bgid` exists (legacy or ring-mapped).
    pub fn exists(&self, bgid: u16) -> bool {
        self.groups.contains_key(&bgid)
    }

    /// Gives back a buffer that was not used.
    pub fn recycle(&mut self, p: Picked) {
        match (self.groups.get_mut(&p.bgid), p.full) {
            (Some(Group::Legacy(list)), Some(full)) => list.push_front(Legacy { addr: p.addr, len: full, bid: p.bid }),
            (Some(Group::Ring(r)), None) => r.head = r.head.wrapping_sub(1),
            // The group changed under the request (removed, re-registered):
            // the buffer is simply gone, as it would be once consumed.
            _ => {}
        }
    }
}

/// A prepared PROVIDE_BUFFERS or REMOVE_BUFFERS.
pub(crate) struct Provide {
    addr: u64,
    len: u32,
    nbufs: u32,
    bgid: u16,
    bid: u16,
}

#[inline(always)]
pub(crate) fn prep_provide(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.op_flags() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let nbufs = sqe.fd() as u32 as u64;
    if nbufs == 0 || nbufs > MAX_BIDS {
        return Err(Errno(libc::E2BIG));
    }
    let (addr, len) = (sqe.addr(), sqe.len());
    if len == 0 {
        return Err(Errno(libc::EINVAL));
    }
    let size = len as u64 * nbufs;
    if addr.checked_add(size).is_none() {
        return Err(Errno(libc::EOVERFLOW));
    }
    if addr + size > TASK_SIZE {
        return Err(Errno(libc::EFAULT));
    }
    let bid = sqe.off();
    if bid > u16::MAX as u64 {
        return Err(Errno(libc::E2BIG));
    }
    if bid + nbufs > MAX_BIDS {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Kbuf(Provide { addr, len, nbufs: nbufs as u32, bgid: sqe.buf_index(), bid: bid as u16 }))
}

#[inline(always)]
pub(crate) fn prep_remove(_ctx: &Ctx, sqe: &Sqe) -> Result<OpData, Errno> {
    if sqe.op_flags() != 0 || sqe.addr() != 0 || sqe.len() != 0 || sqe.off() != 0 || sqe.file_index() != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let nbufs = sqe.fd() as u32 as u64;
    if nbufs == 0 || nbufs > MAX_BIDS {
        return Err(Errno(libc::EINVAL));
    }
    Ok(OpData::Kbuf(Provide { addr: 0, len: 0, nbufs: nbufs as u32, bgid: sqe.buf_index(), bid: 0 }))
}

/// PROVIDE_BUFFERS: appends the buffers to a legacy group (EINVAL on a ring-mapped one).
pub(crate) fn issue_provide(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::Kbuf(p) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let mut t = lock(ctx);
    let g = t.groups.entry(p.bgid).or_insert_with(|| Group::Legacy(VecDeque::new()));
    let Group::Legacy(list) = g else { return Issue::Done(-libc::EINVAL, 0) };
    let blen = (p.len as u64).min(MAX_RW_COUNT) as u32;
    let mut addr = p.addr;
    let mut added = 0u32;
    for i in 0..p.nbufs {
        if list.len() >= u16::MAX as usize {
            break;
        }
        list.push_back(Legacy { addr, len: blen, bid: (p.bid as u32 + i) as u16 });
        addr = addr.wrapping_add(p.len as u64);
        added += 1;
    }
    Issue::Done(if added == 0 { -libc::EOVERFLOW } else { 0 }, 0)
}

/// REMOVE_BUFFERS: drops up to `nbufs` buffers; the result is how many.
pub(crate) fn issue_remove(ctx: &Ctx, req: &mut Req, _mode: Mode) -> Issue {
    let OpData::Kbuf(p) = &req.data else { return Issue::Done(-libc::EINVAL, 0) };
    let mut t = lock(ctx);
    match t.groups.get_mut(&p.bgid) {
        None => Issue::Done(-libc::ENOENT, 0),
        Some(Group::Ring(_)) => Issue::Done(-libc::EINVAL, 0),
        Some(Group::Legacy(list)) => {
            let n = (p.nbufs as usize).min(list.len());
            list.drain(..n);
            Issue::Done(n as i32, 0)
        }
    }
}

/// `IOU_PBUF_RING_MMAP`: the kernel allocates the ring (not supported:
/// ringport's ring fd cannot map it).
const PBUF_RING_MMAP: u16 = 1;
/// `IOU_PBUF_RING_INC`: incremental consumption.
const PBUF_RING_INC: u16 = 2;

/// IORING_REGISTER_PBUF_RING.
pub(crate) fn register_ring(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    if nr != 1 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_buf_reg is plain data.
    let reg: linux_raw_sys::io_uring::io_uring_buf_reg = unsafe { uaccess::read_pod(arg)? };
    if reg.resv.iter().any(|&r| r != 0) {
        return Err(Errno(libc::EINVAL));
    }
    if reg.flags & !(PBUF_RING_MMAP | PBUF_RING_INC) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if !reg.ring_entries.is_power_of_two() || reg.ring_entries >= 65536 {
        return Err(Errno(libc::EINVAL));
    }
    let mut t = lock(ctx);
    match t.groups.get(&reg.bgid) {
        Some(Group::Ring(_)) => return Err(Errno(libc::EEXIST)),
        Some(Group::Legacy(l)) if !l.is_empty() => return Err(Errno(libc::EEXIST)),
        _ => {}
    }
    if reg.flags != 0 {
        // Kernel-allocated rings (mmap'ed from the ring fd) and
        // incremental consumption are not emulated.
        return Err(Errno(libc::EINVAL));
    }
    if reg.ring_addr == 0 {
        return Err(Errno(libc::EFAULT));
    }
    if reg.ring_addr & 4095 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let size = reg.ring_entries as u64 * ENTRY;
    if reg.ring_addr.checked_add(size).is_none_or(|e| e > TASK_SIZE) || !uaccess::is_pinnable(reg.ring_addr, size) {
        return Err(Errno(libc::EFAULT));
    }
    t.groups.insert(reg.bgid, Group::Ring(Mapped { addr: reg.ring_addr, mask: reg.ring_entries - 1, head: 0 }));
    Ok(0)
}

/// IORING_UNREGISTER_PBUF_RING.
pub(crate) fn unregister_ring(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    if nr != 1 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_buf_reg is plain data.
    let reg: linux_raw_sys::io_uring::io_uring_buf_reg = unsafe { uaccess::read_pod(arg)? };
    // Only the group id is looked at (reserved fields are not checked).
    let mut t = lock(ctx);
    match t.groups.get(&reg.bgid) {
        None => Err(Errno(libc::ENOENT)),
        Some(Group::Legacy(_)) => Err(Errno(libc::EINVAL)),
        Some(Group::Ring(_)) => {
            t.groups.remove(&reg.bgid);
            Ok(0)
        }
    }
}

/// IORING_REGISTER_PBUF_STATUS: the head of a ring-mapped group.
pub(crate) fn ring_status(ctx: &Ctx, arg: u64, nr: u32) -> Result<i32, Errno> {
    if nr != 1 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: io_uring_buf_status is plain data.
    let mut st: linux_raw_sys::io_uring::io_uring_buf_status = unsafe { uaccess::read_pod(arg)? };
    if st.resv.iter().any(|&r| r != 0) {
        return Err(Errno(libc::EINVAL));
    }
    let t = lock(ctx);
    let bgid = u16::try_from(st.buf_group).map_err(|_| Errno(libc::ENOENT))?;
    match t.groups.get(&bgid) {
        None => Err(Errno(libc::ENOENT)),
        Some(Group::Legacy(_)) => Err(Errno(libc::EINVAL)),
        Some(Group::Ring(r)) => {
            st.head = r.head as u32;
            uaccess::write_pod(arg, &st)?;
            Ok(0)
        }
    }
}
