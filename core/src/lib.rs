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
pub mod control;
pub mod feed;
pub mod inbox;
pub mod pool;
pub mod reassembly;
pub mod rng;
pub mod seq;
#[cfg(feature = "std")]
pub mod sim;
pub mod time;
pub mod wire;
