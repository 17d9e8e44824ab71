//! Runs snowsocket-core's self-tests (`snowsocket_core::selftest::TESTS`,
//! the same bodies the host runs as a unit test) on a Cortex-M4F, here
//! QEMU's `mps2-an386` board, reporting over semihosting:
//!
//! ```text
//! qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
//!     -semihosting-config enable=on,target=native -kernel <elf>
//! ```
//!
//! It prints one line per test, then `N passed, M failed`, and exits with
//! status 0 when all passed, 1 otherwise (a panic also exits with 1).

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use snowsocket_core::selftest::TESTS;

/// Tests passed so far (read by the panic handler).
static PASSED: AtomicU32 = AtomicU32::new(0);

/// Bytes below the stack pointer at entry painted to measure stack use
/// (RAM is 4 MiB; the stack starts at its top, static data at its bottom).
const PAINT: usize = 512 * 1024;
const PATTERN: u32 = 0x5A5A_A5A5;

/// Fills the `PAINT` bytes below `top` (minus a margin for this function's
/// own frame) with `PATTERN`.
fn paint_stack(top: usize) {
    let mut at = top - PAINT;
    while at < top - 256 {
        // SAFETY: RAM below the current stack frame that nothing uses yet
        // (the stack grows down into it later; static data lies far below).
        unsafe { core::ptr::write_volatile(at as *mut u32, PATTERN) };
        at += 4;
    }
}

/// The deepest the stack went below `top` since `paint_stack(top)`.
fn stack_used(top: usize) -> usize {
    let mut at = top - PAINT;
    // SAFETY: the same painted RAM, only read.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PATTERN {
        at += 4;
    }
    top - at
}

#[entry]
fn main() -> ! {
    let top = cortex_m::register::msp::read() as usize;
    paint_stack(top);
    hprintln!(
        "snowsocket-core self-tests on a Cortex-M4F ({} tests)",
        TESTS.len()
    );
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, test) in TESTS {
        match test() {
            Ok(()) => {
                passed += 1;
                PASSED.store(passed, Ordering::Relaxed);
                hprintln!("{} ... ok", name);
            }
            Err(reason) => {
                failed += 1;
                hprintln!("{} ... FAILED: {}", name, reason);
            }
        }
    }
    // `--features demo-failure`: one test that fails, to check that a
    // failure reaches the exit status.
    if cfg!(feature = "demo-failure") {
        failed += 1;
        hprintln!("demo_failure ... FAILED: built with --features demo-failure");
    }
    hprintln!("stack used by the tests: {} bytes", stack_used(top));
    hprintln!("{} passed, {} failed", passed, failed);
    debug::exit(if failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Not reached under QEMU; on a board without a debugger, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // A panic is a failure of the test that was running; the rest did not run.
    hprintln!("panic: {}", info);
    hprintln!("{} passed, 1 failed", PASSED.load(Ordering::Relaxed));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
