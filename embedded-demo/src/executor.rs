//! A thread-mode embassy executor that sleeps with `WFI`.
//!
//! embassy-executor's own Cortex-M executor sleeps with `WFE`, which QEMU
//! treats as a hint and returns from at once: the emulator would spin at
//! 100 % of a host core for the whole run. `WFI` halts the emulated CPU
//! until an interrupt, so an idle firmware costs nothing (and, under
//! `-icount ...,sleep=off`, QEMU skips idle time entirely). On hardware
//! the two behave alike.
//!
//! The pender (called whenever a task is woken) only raises a flag; the
//! loop checks the flag with interrupts masked before sleeping, and `WFI`
//! wakes on a pending interrupt even while masked, so no wake-up is lost.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embassy_executor::raw;

static WORK: AtomicBool = AtomicBool::new(false);
/// Microseconds spent polling tasks (the CPU's busy time, interrupts aside).
static BUSY_US: AtomicU32 = AtomicU32::new(0);

/// Microseconds the executor has spent polling tasks since it started.
pub fn busy_us() -> u32 {
    BUSY_US.load(Ordering::Relaxed)
}

#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WORK.store(true, Ordering::Release);
}

/// Polls the tasks of `executor` forever (spawn the first ones with
/// `executor.spawner()` before).
pub fn run(executor: &'static raw::Executor) -> ! {
    loop {
        let start = embassy_time_driver::now();
        // SAFETY: `poll` is never re-entered: only this loop calls it, and
        // the pender does not.
        unsafe { executor.poll() };
        let spent = embassy_time_driver::now().saturating_sub(start);
        BUSY_US.fetch_add(spent as u32, Ordering::Relaxed);
        cortex_m::interrupt::disable();
        if !WORK.swap(false, Ordering::AcqRel) {
            cortex_m::asm::wfi();
        }
        // SAFETY: interrupts were enabled when the loop started; nothing
        // here relies on them staying masked.
        unsafe { cortex_m::interrupt::enable() };
    }
}
