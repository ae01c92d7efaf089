//! defmt global logger over Arm semihosting, plus the panic and fault exits.
//!
//! defmt frames are binary (format strings stay in the ELF, only indices and
//! arguments are sent); they are written to the host's stdout through the
//! semihosting `SYS_WRITE` call and decoded there by `defmt-print -e <elf>`
//! (see `qemu-run.sh`). A semihosting call traps into the debugger or
//! emulator, which is slow, so each frame is collected in a buffer and
//! written with one call when the frame ends.
//!
//! A panic or a hard fault logs what it can and ends the run through
//! semihosting with a failure status, so QEMU exits non-zero instead of
//! hanging.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_semihosting::debug::{self, EXIT_FAILURE};
use cortex_m_semihosting::hio::{self, HostStream};

/// Bytes of one frame collected before a write; longer frames are written
/// in pieces.
const BUF: usize = 256;

struct State {
    encoder: defmt::Encoder,
    restore: critical_section::RestoreState,
    out: Out,
}

/// The frame being collected, and the host's stdout once opened.
struct Out {
    stream: Option<HostStream>,
    buf: [u8; BUF],
    len: usize,
}

impl Out {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == BUF {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        if self.stream.is_none() {
            self.stream = hio::hstdout().ok();
        }
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.write_all(&self.buf[..self.len]);
        }
        self.len = 0;
    }
}

struct Shared(UnsafeCell<State>);
// SAFETY: the state is only touched between `acquire` and `release`, which
// hold a critical section (single core), and `TAKEN` rejects re-entry.
unsafe impl Sync for Shared {}

static STATE: Shared = Shared(UnsafeCell::new(State {
    encoder: defmt::Encoder::new(),
    restore: critical_section::RestoreState::invalid(),
    out: Out {
        stream: None,
        buf: [0; BUF],
        len: 0,
    },
}));
static TAKEN: AtomicBool = AtomicBool::new(false);

#[defmt::global_logger]
struct SemihostingLogger;

// SAFETY: defmt calls these in the documented order (acquire, write*,
// release) from one context at a time; the critical section taken in
// `acquire` keeps interrupts out until `release`.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        // SAFETY: paired with the `release` in `Logger::release`.
        let restore = unsafe { critical_section::acquire() };
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger taken re-entrantly");
        }
        // SAFETY: exclusive: inside the critical section, TAKEN was false.
        let s = unsafe { &mut *STATE.0.get() };
        s.restore = restore;
        let State { encoder, out, .. } = s;
        encoder.start_frame(|b| out.push(b));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called after `acquire`, still inside its critical section.
        let s = unsafe { &mut *STATE.0.get() };
        let State { encoder, out, .. } = s;
        encoder.end_frame(|b| out.push(b));
        out.flush();
        let restore = s.restore;
        TAKEN.store(false, Ordering::Release);
        // SAFETY: `restore` is the state returned by the matching acquire.
        unsafe { critical_section::release(restore) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between `acquire` and `release`.
        let s = unsafe { &mut *STATE.0.get() };
        let State { encoder, out, .. } = s;
        encoder.write(bytes, |b| out.push(b));
    }
}

defmt::timestamp!("{=u64:us}", embassy_time::Instant::now().as_micros());

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit_failure()
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("hard fault at pc {=u32:#x}", frame.pc());
    exit_failure()
}

/// Does the semihosting command line (QEMU: the image's path, then
/// `-append`) contain `word`?
pub fn command_line_has(word: &[u8]) -> bool {
    let mut buf = [0u8; 128];
    // SYS_GET_CMDLINE takes a block {buffer, length}; the host writes the
    // command line into the buffer and its length into the block.
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: the block and the buffer outlive the call; the host writes at
    // most `buf.len()` bytes.
    let failed = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::GET_CMDLINE,
            block.as_mut_ptr() as usize,
        )
    } != 0;
    // SAFETY: reads back what the host wrote into our own local.
    let len = unsafe { core::ptr::read_volatile(&block[1]) }.min(buf.len());
    !failed && buf[..len].windows(word.len()).any(|w| w == word)
}

/// Ends the run with a failure status (QEMU exits with 1).
pub fn exit_failure() -> ! {
    debug::exit(EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
