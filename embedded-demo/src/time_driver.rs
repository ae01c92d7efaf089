//! embassy-time driver for the MPS2 AN386 board, on the Cortex-M SysTick.
//!
//! The board has no RTC the way embassy's HALs expect one; its CPU clock
//! (SYSCLK) is 25 MHz, and QEMU models SysTick faithfully. SysTick is a
//! 24-bit down counter, too short to be the clock itself, so:
//!
//! * it interrupts once per millisecond and the handler counts milliseconds
//!   in a 64-bit counter (no wrap in practice);
//! * [`Driver::now`] adds the sub-millisecond part read from the current
//!   value register, so time has microsecond resolution (the embassy tick is
//!   1 MHz). If the counter has wrapped but the interrupt has not been taken
//!   yet (we are in a critical section), the pending bit says so and one
//!   more millisecond is added — time never goes back;
//! * alarms are checked in the millisecond interrupt: a timer fires at the
//!   first tick at or after its deadline, at most 1 ms late. That is far
//!   below every phasecast period (heartbeats, retransmission), and keeps
//!   the driver free of a second hardware timer.
//!
//! The timer queue is embassy's integrated queue (`embassy-time-queue-utils`
//! default), kept in the driver behind a critical section.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// CPU clock of the AN386 image (SYSCLK), which clocks SysTick.
pub const SYSCLK_HZ: u32 = 25_000_000;
/// SysTick counts per millisecond.
const CYCLES_PER_MS: u32 = SYSCLK_HZ / 1000;
/// SysTick counts per microsecond.
const CYCLES_PER_US: u32 = SYSCLK_HZ / 1_000_000;

struct SysTickDriver {
    /// Whole milliseconds since `init`.
    millis: Mutex<Cell<u64>>,
    /// Earliest deadline in the queue, in µs (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    millis: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts SysTick: one interrupt per millisecond from the CPU clock.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_MS - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

impl SysTickDriver {
    fn now_in(&self, cs: CriticalSection<'_>) -> u64 {
        let mut ms = self.millis.borrow(cs).get();
        let mut cvr = SYST::get_current();
        if SCB::is_pendst_pending() {
            // Wrapped, interrupt not taken yet: that millisecond is over.
            ms += 1;
            cvr = SYST::get_current();
        }
        let elapsed = (CYCLES_PER_MS - 1).saturating_sub(cvr) / CYCLES_PER_US;
        ms * 1000 + u64::from(elapsed)
    }

    /// Wakes every expired timer and arms the next deadline.
    fn fire(&self, cs: CriticalSection<'_>) {
        let mut queue = self.queue.borrow(cs).borrow_mut();
        let mut next = queue.next_expiration(self.now_in(cs));
        // Time moves while wakers run; make sure `next` is still ahead.
        while next <= self.now_in(cs) {
            next = queue.next_expiration(self.now_in(cs));
        }
        self.alarm.borrow(cs).set(next);
    }

    fn on_tick(&self) {
        critical_section::with(|cs| {
            let ms = self.millis.borrow(cs);
            ms.set(ms.get() + 1);
            if self.alarm.borrow(cs).get() <= self.now_in(cs) {
                self.fire(cs);
            }
        });
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_in(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let changed = self.queue.borrow(cs).borrow_mut().schedule_wake(at, waker);
            if changed {
                self.fire(cs);
            }
        });
    }
}

#[exception]
fn SysTick() {
    DRIVER.on_tick();
}
