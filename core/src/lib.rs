//! # phasecast-core
//!
//! An allocation-free, single-threaded, `no_std` sans-IO engine for group
//! communication over datagrams.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod addr;
pub mod heap;
pub mod queue;
pub mod rng;
pub mod seq;
pub mod time;
pub mod timer;
