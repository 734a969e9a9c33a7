//! The common stub a rewritten `io_uring_enter` site calls (x86_64; see
//! `rewrite.rs`), and what it saves.
//!
//! A `syscall` instruction leaves every register but `rax`, `rcx` and `r11`
//! as it was, vector registers included, and a program may hold values in
//! them across one. The engine is ordinary code: Rust moves data through
//! `xmm` registers, and glibc's string functions use `ymm`, `zmm16-31` and
//! the mask registers where the CPU has them. So the stub saves what the
//! engine may change and the program may hold, around its call:
//!
//! - `xmm0-15` always; the whole `ymm0-15` where the AVX state is in use;
//!   the whole `zmm0-15` where their upper halves are in use; `zmm16-31`
//!   and `k0-7` where those are in use. "In use" is the CPU's own record
//!   (`xgetbv` with `ecx` = 1, XINUSE): a component not in use holds zeros,
//!   so it is put back as zeros (`vzeroupper`, zeroing moves) instead of
//!   saved, and a program that never touched AVX-512 has none of its state
//!   loaded by the stub. Without XINUSE every component the OS enabled
//!   counts as in use.
//! - Not the x87 state, MXCSR, PKRU, AMX tiles or MPX bounds: the engine
//!   never changes them (no `long double`, no floating-point environment
//!   calls, no protection keys).
//!
//! This costs about 25 ns where `xsavec`/`xrstor` of the same state cost
//! about 160 ns on this machine's CPU, and one enter of fio's is about 2 us.
//! A CPU with AVX-512 but without its BW and VL parts (Xeon Phi) gets no
//! stub: its sites keep trapping.
//!
//! `RINGPORT_TEST_CLOBBER=1` makes the engine side overwrite every vector
//! and mask register the CPU has on each call through a stub, so that a test
//! can show the stub puts all of them back.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// XCR0 / XINUSE component bits the stub tracks.
const AVX: u32 = 1 << 2;
const OPMASK: u32 = 1 << 5;
const ZMM_HI256: u32 = 1 << 6;
const HI16_ZMM: u32 = 1 << 7;
const AVX512: u32 = OPMASK | ZMM_HI256 | HI16_ZMM;
/// Flags beside them: XINUSE can be read; AVX is enabled; AVX-512 is.
const HAS_XINUSE: u32 = 1 << 8;
const HAS_AVX: u32 = 1 << 9;
const HAS_AVX512: u32 = 1 << 10;
/// Set once MODE holds the CPU's answer; with UNUSABLE when there is no stub.
const KNOWN: u32 = 1 << 31;
const UNUSABLE: u32 = 1 << 30;

/// What the stub saves: the component bits enabled by the OS (assumed in
/// use until XINUSE says otherwise) and the `HAS_*` flags. Read by the stub.
static MODE: AtomicU32 = AtomicU32::new(0);
/// `RINGPORT_TEST_CLOBBER`: overwrite the vector registers on each call.
pub static POISON: AtomicBool = AtomicBool::new(false);

/// The CPU's vector state, as the stub sees it: `None` where it cannot
/// save it cheaply (AVX-512 without BW and VL).
fn probe() -> Option<u32> {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // (cpuid is always available on x86_64.)
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 27) == 0 {
        // No OSXSAVE: the OS enabled SSE only.
        return Some(0);
    }
    let xcr0 = xgetbv0();
    let mut mode = 0;
    if xcr0 & 0b110 == 0b110 {
        mode |= AVX | HAS_AVX;
    }
    if xcr0 & u64::from(AVX512) == u64::from(AVX512) {
        let leaf7 = __cpuid_count(7, 0);
        let (bw, vl) = (leaf7.ebx & (1 << 30) != 0, leaf7.ebx & (1 << 31) != 0);
        if !(bw && vl) {
            return None;
        }
        mode |= AVX512 | HAS_AVX512;
    }
    if __cpuid_count(0xd, 1).eax & (1 << 2) != 0 {
        mode |= HAS_XINUSE;
    }
    Some(mode)
}

fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: called only with OSXSAVE set, where xgetbv with ecx 0 is
    // defined; it only reads XCR0.
    unsafe { core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    u64::from(hi) << 32 | u64::from(lo)
}

/// True when this CPU can use the stub (decided once).
pub fn usable() -> bool {
    let mut m = MODE.load(Ordering::Relaxed);
    if m & KNOWN == 0 {
        m = KNOWN | probe().unwrap_or(UNUSABLE);
        MODE.store(m, Ordering::Relaxed);
    }
    m & UNUSABLE == 0
}

/// The stub's call into the engine: `saved` points at the argument
/// registers the stub pushed (r9, r8, r10, rdx, rsi, rdi, in that order).
extern "C" fn enter_from_stub(saved: *const u64) -> i64 {
    // SAFETY: the stub passes a pointer to six pushed registers.
    let s = unsafe { core::slice::from_raw_parts(saved, 6) };
    let a = [s[5], s[4], s[3], s[2], s[1], s[0]];
    if POISON.load(Ordering::Relaxed) {
        // SAFETY: overwrites caller-saved registers only (all vector and
        // mask registers are), with the CPU's enabled features.
        unsafe { poison(MODE.load(Ordering::Relaxed)) };
    }
    // SAFETY: the program's own io_uring_enter, served as the trap would.
    unsafe { crate::handler::serve_raw(crate::arch::NR_IO_URING_ENTER, a) }
}

/// The stub. Called (by a rewritten site's page) with the program's
/// `syscall` arguments in place and the red zone stepped over; returns the
/// result in `rax`, with every other register as it was except `rcx` and
/// `r11`. The save area (2 KiB of vectors, 64 bytes of masks) is 64-byte
/// aligned on the stack; `r12` holds which components were saved. The
/// flags are saved too, so that the engine runs with the direction flag
/// clear.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn stub() {
    core::arch::naked_asm!(
        "push %rbp",
        "mov %rsp, %rbp",
        "push %rdi",
        "push %rsi",
        "push %rdx",
        "push %r10",
        "push %r8",
        "push %r9",
        "push %rbx",
        "push %r12",
        // The engine runs with the direction flag clear, as the ABI wants
        // (a program may make its `syscall` with it set).
        "pushfq",
        "cld",
        "sub $2176, %rsp",
        "and $-64, %rsp",
        "mov {mode}(%rip), %r12d",
        "test ${has_xinuse}, %r12d",
        "jz 1f",
        "mov $1, %ecx",
        "xgetbv",
        "or $0xffffff00, %eax",
        "and %eax, %r12d",
        "1:",
        // Save zmm0-15, else ymm0-15, else xmm0-15.
        "test ${zmm_hi256}, %r12d",
        "jz 2f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "vmovdqa64 %zmm\\r, \\r*64(%rsp)",
        ".endr",
        "jmp 4f",
        "2:",
        "test ${avx}, %r12d",
        "jz 3f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "vmovdqa %ymm\\r, \\r*64(%rsp)",
        ".endr",
        "jmp 4f",
        "3:",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "movaps %xmm\\r, \\r*64(%rsp)",
        ".endr",
        "4:",
        "test ${hi16_zmm}, %r12d",
        "jz 5f",
        ".irp r,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
        "vmovdqa64 %zmm\\r, \\r*64(%rsp)",
        ".endr",
        "5:",
        "test ${opmask}, %r12d",
        "jz 6f",
        ".irp r,0,1,2,3,4,5,6,7",
        "kmovq %k\\r, 2048+\\r*8(%rsp)",
        ".endr",
        "6:",
        "lea -48(%rbp), %rdi",
        "call {enter}",
        "mov %rax, %rbx",
        // Put back what was saved; zero what was not in use.
        "test ${zmm_hi256}, %r12d",
        "jz 2f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "vmovdqa64 \\r*64(%rsp), %zmm\\r",
        ".endr",
        "jmp 4f",
        "2:",
        "test ${avx}, %r12d",
        "jz 3f",
        // (A VEX load zeroes bits 256 and up: not in use, so zero.)
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "vmovdqa \\r*64(%rsp), %ymm\\r",
        ".endr",
        "jmp 4f",
        "3:",
        "test ${has_avx}, %r12d",
        "jz 31f",
        "vzeroupper",
        "31:",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "movaps \\r*64(%rsp), %xmm\\r",
        ".endr",
        "4:",
        "test ${hi16_zmm}, %r12d",
        "jz 41f",
        ".irp r,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
        "vmovdqa64 \\r*64(%rsp), %zmm\\r",
        ".endr",
        "jmp 5f",
        "41:",
        "test ${has_avx512}, %r12d",
        "jz 5f",
        // (An EVEX.128 zeroing idiom clears the whole register.)
        ".irp r,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
        "vpxord %xmm\\r, %xmm\\r, %xmm\\r",
        ".endr",
        "5:",
        "test ${opmask}, %r12d",
        "jz 51f",
        ".irp r,0,1,2,3,4,5,6,7",
        "kmovq 2048+\\r*8(%rsp), %k\\r",
        ".endr",
        "jmp 6f",
        "51:",
        "test ${has_avx512}, %r12d",
        "jz 6f",
        ".irp r,0,1,2,3,4,5,6,7",
        "kxorq %k\\r, %k\\r, %k\\r",
        ".endr",
        "6:",
        "mov %rbx, %rax",
        "lea -72(%rbp), %rsp",
        "popfq",
        "pop %r12",
        "pop %rbx",
        "pop %r9",
        "pop %r8",
        "pop %r10",
        "pop %rdx",
        "pop %rsi",
        "pop %rdi",
        "pop %rbp",
        "ret",
        mode = sym MODE,
        enter = sym enter_from_stub,
        has_xinuse = const HAS_XINUSE,
        has_avx = const HAS_AVX,
        has_avx512 = const HAS_AVX512,
        avx = const AVX,
        opmask = const OPMASK,
        zmm_hi256 = const ZMM_HI256,
        hi16_zmm = const HI16_ZMM,
        options(att_syntax),
    )
}

/// Overwrites every vector and mask register `mode` says the CPU has with
/// ones (the test hook behind [`POISON`]).
#[unsafe(naked)]
unsafe extern "C" fn poison(mode: u32) {
    core::arch::naked_asm!(
        "pcmpeqd %xmm0, %xmm0",
        ".irp r,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "movaps %xmm0, %xmm\\r",
        ".endr",
        "test ${has_avx}, %edi",
        "jz 1f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "vcmptrueps %ymm\\r, %ymm\\r, %ymm\\r",
        ".endr",
        "test ${has_avx512}, %edi",
        "jz 1f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
        "vpternlogd $0xff, %zmm\\r, %zmm\\r, %zmm\\r",
        ".endr",
        ".irp r,0,1,2,3,4,5,6,7",
        "kxnorq %k\\r, %k\\r, %k\\r",
        ".endr",
        "1:",
        "ret",
        has_avx = const HAS_AVX,
        has_avx512 = const HAS_AVX512,
        options(att_syntax),
    )
}
