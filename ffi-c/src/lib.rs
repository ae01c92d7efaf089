//! # phasecast-ffi: the C ABI of phasecast
//!
//! This crate builds `libphasecast.a` and `libphasecast.so` and the header
//! `ffi-c/include/phasecast.h` (generated from this source by cbindgen; the
//! documentation of every item below is copied into it). It wraps the sans-IO
//! engine of `phasecast-core` for daemons written in C that keep their own
//! sockets and event loop: they hand the node datagrams and the time, and
//! pull out datagrams to send, events and the next deadline.
//!
//! ## The contract, for C programmers
//!
//! * **Status codes.** Every function that can fail returns a
//!   [`phasecast_status`]: `PHASECAST_OK`, one of the non-error outcomes
//!   (`PHASECAST_WOULD_BLOCK`: nothing to poll now; `PHASECAST_FULL`:
//!   backpressure, retry after deliveries; `PHASECAST_DATAGRAM_REJECTED`: a
//!   received datagram was refused and changed nothing), or an error
//!   (`PHASECAST_ERR_*`, all ≥ 16). Out-parameters are written only on
//!   `PHASECAST_OK` unless a function says otherwise. [`phasecast_status_str`]
//!   names a code; [`phasecast_last_error_detail`] gives the detail of the last
//!   failing call on the calling thread (which configuration field, …).
//! * **No panic crosses the boundary.** Every entry point runs under
//!   `catch_unwind`; a panic (a bug: the core is written not to panic on any
//!   input) returns `PHASECAST_ERR_PANIC` and *poisons* the node: every later
//!   call on it returns `PHASECAST_ERR_PANIC` except destroy/fini.
//! * **Handles.** A `phasecast_node *` is opaque. It is created by
//!   [`phasecast_node_create`] (library-owned memory, released by
//!   [`phasecast_node_destroy`], which also sets the caller's pointer to
//!   `NULL`) or by [`phasecast_node_init`] in caller-provided memory of
//!   [`phasecast_node_size`] bytes aligned to [`phasecast_node_align`]
//!   (finalised by [`phasecast_node_fini`]; the memory stays the caller's).
//!   A node carries a magic word: calls on memory that does not hold a live
//!   node (never initialised, finalised) return `PHASECAST_ERR_BAD_HANDLE`,
//!   and `phasecast_node_init` on memory that holds a live node returns
//!   `PHASECAST_ERR_ALREADY_INITIALIZED`. Use after `phasecast_node_destroy`
//!   through *another copy* of the pointer is undefined (the memory is freed).
//! * **Threads.** A node is single-threaded (it is a state machine); it may
//!   move between threads, but two calls on one node must not overlap. An
//!   overlapping call is detected and refused with
//!   `PHASECAST_ERR_CONCURRENT_USE` (it does not wait). Different nodes are
//!   independent.
//! * **Borrowed bytes.** The library never keeps a pointer the caller passed
//!   beyond the call (configuration member lists, payloads and datagrams are
//!   copied or consumed during the call). The one pointer it hands out, an
//!   event's payload, points into the node and stays valid until the next
//!   `phasecast_node_poll_event` on that node or its destruction.
//! * **Time** is a `uint64_t` count of microseconds from any origin the
//!   daemon chooses, monotonic (e.g. `CLOCK_MONOTONIC`); going backwards is
//!   harmless (the node keeps the latest).
//!
//! ## Building a 2.3 MiB node without blowing small stacks
//!
//! The C library uses the core's [`HostNode`] (64 sinks, 1 MiB payload pool,
//! 64 KiB inbox, datagrams up to 65,507 bytes): about 2.3 MiB of state held
//! inline. `Node::new` returns it by value and the core has no in-place
//! initialiser (it is `#![forbid(unsafe_code)]`, and a safe in-place reset
//! would still need an already valid node to start from). So
//! `phasecast_node_create` and `phasecast_node_init` build the node on a
//! short-lived helper thread whose stack is sized for it (8 × the node + 1 MiB,
//! only the touched pages are committed) and move it straight into its final
//! memory (heap or the caller's); the helper is joined before the call
//! returns. The caller's thread never holds the node on its stack, so daemons
//! with small thread stacks (musl's 128 KiB, embedded-style 64 KiB stacks) can
//! create nodes; every other entry point works on the node in place and needs
//! only a few KiB of stack (the C tests run the whole API on a 64 KiB pthread
//! stack). Creation costs one thread spawn (tens of µs), irrelevant next to a
//! node's lifetime.
//!
//! ## Timers: one workaround
//!
//! The core's `poll_timeout` reports the total order's retransmission tick
//! while anything is outstanding; [`phasecast_node_next_timeout`] also never
//! returns a deadline later than the last `handle_timeout` plus the
//! configured `tob_rto_us` (a belt-and-braces bound kept from before the
//! core reported that tick).
//!
//! ## Adding an entry point
//!
//! Each function is a few lines: validate pointers with the helpers of
//! `node.rs`, run the call through `guard::with_node` (handle checked,
//! exclusive, not poisoned, panics caught) and map `phasecast_core::Error`
//! through [`status_of`] (a core error variant this crate does not know yet
//! becomes `PHASECAST_ERR_INVALID_ARGUMENT` with its name in the detail
//! until it gets its own status). Plain `#[repr(C)]` structs are copied in
//! and out. The pledge API (Omaha) is `phasecast_node_begin_pledge`,
//! `phasecast_node_send_to`, `phasecast_node_pledged_send`,
//! `phasecast_node_end_pledge`, with `proba_buf`/`timeout_us`/`app`/
//! `critical` in [`phasecast_send_options`] and the node's policy in
//! `phasecast_config::aggregation`. QSM group multicast is
//! `phasecast_node_install_groups` (the CMS view: regions and groups) and
//! `phasecast_node_multicast`, delivered as `PHASECAST_EVENT_GROUP_DELIVERED`.
//! To add an entry point:
//!
//! * new events: a `PHASECAST_EVENT_*` value and a union arm in
//!   [`phasecast_event_data`], converted in `c_event()`;
//! * bump `PHASECAST_ABI_VERSION`, run `make ffi-header`, add the misuse
//!   cases to `tests/c/api_misuse.c`.
//!
//! [`HostNode`]: phasecast_core::HostNode
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// The exported names are C's: `phasecast_node_create`, `PHASECAST_OK`.
#![allow(non_camel_case_types)]

mod guard;
mod node;
pub mod types;

pub use guard::{phasecast_last_error_detail, phasecast_node, status_of};
pub use node::*;
pub use types::*;
