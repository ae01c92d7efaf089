//! # phasecast on embassy
//!
//! Reusable pieces of the `embedded-demo` firmware, independent of the
//! board:
//!
//! * [`adapter`]: the host loop that drives a phasecast node over an
//!   embassy-net UDP socket — drop it into any embassy firmware with a real
//!   Ethernet or Wi-Fi driver;
//! * [`link`]: an in-memory Ethernet segment joining several embassy-net
//!   stacks (tests and demos without hardware).
//!
//! The board support of the demo (SysTick time driver, executor, semihosting
//! logger) lives in the binary, `src/main.rs`.
#![no_std]
#![warn(missing_docs)]

pub mod adapter;
pub mod link;
