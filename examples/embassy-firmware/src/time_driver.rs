//! An embassy time driver on the Cortex-M SysTick: a 1 kHz tick (QEMU's
//! mps2-an386 runs the core at 25 MHz), a 64-bit tick count, and a few
//! wake-up slots checked on every tick.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;

/// The core clock of QEMU's mps2-an386.
const CORE_HZ: u32 = 25_000_000;
/// Wakers that can wait at once (the tasks here wait on at most a few).
const SLOTS: usize = 8;

/// A task's waker and the tick it waits for.
type Wake = Option<(u64, Waker)>;

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    wakes: Mutex<RefCell<[Wake; SLOTS]>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    wakes: Mutex::new(RefCell::new([const { None }; SLOTS])),
});

/// Starts the 1 kHz tick.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / embassy_time::TICK_HZ as u32 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            if at <= self.ticks.borrow(cs).get() {
                waker.wake_by_ref();
                return;
            }
            let mut wakes = self.wakes.borrow_ref_mut(cs);
            // The same task waiting again: keep the earlier deadline.
            for slot in wakes.iter_mut().flatten() {
                if slot.1.will_wake(waker) {
                    slot.0 = slot.0.min(at);
                    return;
                }
            }
            match wakes.iter_mut().find(|slot| slot.is_none()) {
                Some(slot) => *slot = Some((at, waker.clone())),
                // No room: wake now, the task polls again and re-registers.
                None => waker.wake_by_ref(),
            }
        });
    }
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        for slot in DRIVER.wakes.borrow_ref_mut(cs).iter_mut() {
            if slot.as_ref().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, waker)) = slot.take() {
                    waker.wake();
                }
            }
        }
    });
}
