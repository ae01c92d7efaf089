//! Rust-side tests of the boundary rules (the C tests in `tests/c/` drive
//! the same functions from C, plain and under the sanitizers).

use super::*;
use crate::guard::{phasecast_last_error_detail, phasecast_node};
use phasecast_event_kind::*;

const MEMBERS: [u16; 3] = [0, 1, 2];

fn config(id: u16) -> phasecast_config {
    let mut c = core::mem::MaybeUninit::<phasecast_config>::uninit();
    let s = unsafe { phasecast_config_init(c.as_mut_ptr(), id, MEMBERS.as_ptr(), MEMBERS.len()) };
    assert_eq!(s, PHASECAST_OK);
    let mut c = unsafe { c.assume_init() };
    c.heartbeat_us = 10_000;
    c
}

fn create(id: u16) -> *mut phasecast_node {
    let mut n = core::ptr::null_mut();
    let s = unsafe { phasecast_node_create(&config(id), 0, &mut n) };
    assert_eq!(s, PHASECAST_OK);
    assert!(!n.is_null());
    n
}

fn detail() -> String {
    unsafe { std::ffi::CStr::from_ptr(phasecast_last_error_detail()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn config_init_mirrors_the_core_defaults() {
    let c = config(1);
    let d = Config::new(NodeId(1), &[]);
    assert_eq!(c.mtu, d.mtu);
    assert_eq!(c.tob_window, d.tob_window);
    assert_eq!(c.tob_rto_us, d.tob_rto.as_micros());
    assert_eq!(c.cluster, d.cluster);
    assert_eq!(c.integrity, PHASECAST_INTEGRITY_CRC32C);
}

#[test]
fn bad_configurations_are_refused_with_a_detail() {
    type Breaker = fn(&mut phasecast_config);
    let cases: [(Breaker, &str); 8] = [
        (|c| c.mtu = 100, "mtu"),
        (|c| c.integrity = 7, "integrity"),
        (|c| c.scheduling = 9, "scheduling"),
        (|c| c.view_policy = 2, "view_policy"),
        (|c| c.tob_window = 0, "tob_window"),
        (|c| c.tob_rto_us = 0, "tob_rto_us"),
        (|c| c.join = 2, "join"),
        (|c| c.id = 9, "members must include id"),
    ];
    for (break_it, what) in cases {
        let mut c = config(0);
        break_it(&mut c);
        let mut n = core::ptr::null_mut();
        let s = unsafe { phasecast_node_create(&c, 0, &mut n) };
        assert_eq!(s, PHASECAST_ERR_INVALID_ARGUMENT, "{what}");
        assert!(n.is_null(), "no handle on failure");
        assert!(detail().contains(what), "{what}: {}", detail());
    }
}

#[test]
fn creation_does_not_need_the_callers_stack() {
    // A 64 KiB thread builds, drives and destroys a 2.3 MiB node.
    let t = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(|| {
            let mut n = create(0);
            let mut buf = vec![0u8; 1400];
            let mut tx = phasecast_transmit::default();
            assert_eq!(
                unsafe { phasecast_node_broadcast(n, 1, b"x".as_ptr(), 1, core::ptr::null_mut()) },
                PHASECAST_OK
            );
            let s =
                unsafe { phasecast_node_poll_transmit(n, 1, buf.as_mut_ptr(), buf.len(), &mut tx) };
            assert_eq!(s, PHASECAST_OK);
            assert_eq!(unsafe { phasecast_node_destroy(&mut n) }, PHASECAST_OK);
            assert!(n.is_null());
        })
        .unwrap();
    t.join().unwrap();
}

#[test]
fn caller_memory_init_fini_and_misuse() {
    let size = phasecast_node_size();
    let align = phasecast_node_align();
    assert!(size > 2 << 20, "the engine is held inline");
    let layout = Layout::from_size_align(size + align, align).unwrap();
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    let c = config(1);
    let mut n = core::ptr::null_mut();
    let mut needed = 0usize;
    // Too short: the size comes back.
    let s = unsafe { phasecast_node_init(mem.cast(), size - 1, &c, 0, &mut needed, &mut n) };
    assert_eq!(s, PHASECAST_ERR_BUFFER_TOO_SMALL);
    assert_eq!(needed, size);
    // Misaligned.
    let s = unsafe { phasecast_node_init(mem.add(1).cast(), size, &c, 0, &mut needed, &mut n) };
    assert_eq!(s, PHASECAST_ERR_INVALID_ARGUMENT);
    // Zeroed memory is not a node.
    let mut mtu = 0usize;
    assert_eq!(
        unsafe { phasecast_node_mtu(mem.cast(), &mut mtu) },
        PHASECAST_ERR_BAD_HANDLE
    );
    let s = unsafe { phasecast_node_init(mem.cast(), size, &c, 0, &mut needed, &mut n) };
    assert_eq!(s, PHASECAST_OK);
    assert_eq!(n.cast::<u8>(), mem);
    assert_eq!(unsafe { phasecast_node_mtu(n, &mut mtu) }, PHASECAST_OK);
    assert_eq!(mtu, 1400);
    // Double init, destroy of a caller-memory node.
    let mut again = core::ptr::null_mut();
    let s = unsafe { phasecast_node_init(mem.cast(), size, &c, 0, &mut needed, &mut again) };
    assert_eq!(s, PHASECAST_ERR_ALREADY_INITIALIZED);
    let mut h = n;
    assert_eq!(
        unsafe { phasecast_node_destroy(&mut h) },
        PHASECAST_ERR_BAD_HANDLE
    );
    assert_eq!(unsafe { phasecast_node_fini(n) }, PHASECAST_OK);
    // Use after fini, double fini: detected (the memory is still ours).
    assert_eq!(
        unsafe { phasecast_node_mtu(n, &mut mtu) },
        PHASECAST_ERR_BAD_HANDLE
    );
    assert_eq!(unsafe { phasecast_node_fini(n) }, PHASECAST_ERR_BAD_HANDLE);
    // The memory can hold a node again.
    let s = unsafe { phasecast_node_init(mem.cast(), size, &c, 0, &mut needed, &mut n) };
    assert_eq!(s, PHASECAST_OK);
    assert_eq!(unsafe { phasecast_node_fini(n) }, PHASECAST_OK);
    unsafe { std::alloc::dealloc(mem, layout) };
}

#[test]
fn overlapping_calls_are_refused_not_raced() {
    let mut n = create(0);
    unsafe { acquire(n) }.unwrap(); // as if another thread were inside a call
    let mut mtu = 0usize;
    assert_eq!(
        unsafe { phasecast_node_mtu(n, &mut mtu) },
        PHASECAST_ERR_CONCURRENT_USE
    );
    unsafe { release(n) };
    assert_eq!(unsafe { phasecast_node_mtu(n, &mut mtu) }, PHASECAST_OK);
    assert_eq!(unsafe { phasecast_node_destroy(&mut n) }, PHASECAST_OK);
    assert_eq!(
        unsafe { phasecast_node_destroy(&mut n) },
        PHASECAST_ERR_NULL_ARGUMENT,
        "a second destroy through the same variable"
    );
}

#[test]
fn a_panic_poisons_the_node() {
    let mut n = create(0);
    let s = unsafe { with_node(n, |_| panic!("injected")) };
    assert_eq!(s, PHASECAST_ERR_PANIC);
    let mut mtu = 0usize;
    assert_eq!(
        unsafe { phasecast_node_mtu(n, &mut mtu) },
        PHASECAST_ERR_PANIC
    );
    assert!(detail().contains("poisoned"));
    assert_eq!(unsafe { phasecast_node_destroy(&mut n) }, PHASECAST_OK);
}

/// Moves every datagram of `from` to the others (group = all but `from`).
fn pump(nodes: &[*mut phasecast_node], now: u64) -> usize {
    let mut moved = 0;
    let mut buf = vec![0u8; 1400];
    for (i, &n) in nodes.iter().enumerate() {
        let mut tx = phasecast_transmit::default();
        while unsafe { phasecast_node_poll_transmit(n, now, buf.as_mut_ptr(), buf.len(), &mut tx) }
            == PHASECAST_OK
        {
            for (j, &m) in nodes.iter().enumerate() {
                let to_it = match tx.destination.kind {
                    PHASECAST_DEST_PEER => tx.destination.id == j as u32,
                    _ => j != i,
                };
                if to_it {
                    let mut copy = buf[..tx.len].to_vec();
                    let s = unsafe {
                        phasecast_node_handle_datagram(
                            m,
                            now,
                            i as u16,
                            copy.as_mut_ptr(),
                            copy.len(),
                            core::ptr::null_mut(),
                        )
                    };
                    assert_eq!(s, PHASECAST_OK);
                    moved += 1;
                }
            }
        }
    }
    moved
}

#[test]
fn three_nodes_deliver_the_same_sequence_and_payloads_outlive_other_calls() {
    let mut nodes: Vec<_> = (0..3).map(create).collect();
    let mut seen: Vec<Vec<(u16, Vec<u8>)>> = vec![vec![]; 3];
    let mut now = 1;
    for round in 0..40u32 {
        for (i, &n) in nodes.iter().enumerate() {
            let p = [i as u8, round as u8];
            let s =
                unsafe { phasecast_node_broadcast(n, now, p.as_ptr(), 2, core::ptr::null_mut()) };
            assert!(s == PHASECAST_OK || s == PHASECAST_FULL);
        }
        while pump(&nodes, now) > 0 {}
        for (i, &n) in nodes.iter().enumerate() {
            let mut ev = core::mem::MaybeUninit::<phasecast_event>::uninit();
            while unsafe { phasecast_node_poll_event(n, ev.as_mut_ptr()) } == PHASECAST_OK {
                let ev = unsafe { ev.assume_init_ref() };
                if ev.kind == PHASECAST_EVENT_DELIVERED {
                    let d = unsafe { ev.data.delivered };
                    // Another call before reading: the payload stays put.
                    let mut c = phasecast_counters::default();
                    assert_eq!(unsafe { phasecast_node_counters(n, &mut c) }, PHASECAST_OK);
                    let bytes = unsafe { core::slice::from_raw_parts(d.payload, d.payload_len) };
                    seen[i].push((d.sender, bytes.to_vec()));
                }
            }
        }
        now += 1000;
        for &n in &nodes {
            assert_eq!(
                unsafe { phasecast_node_handle_timeout(n, now) },
                PHASECAST_OK
            );
        }
    }
    assert!(seen[0].len() >= 100, "delivered {}", seen[0].len());
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    for n in nodes.iter_mut() {
        assert_eq!(unsafe { phasecast_node_destroy(n) }, PHASECAST_OK);
    }
}

#[test]
fn next_timeout_covers_the_total_order_tick() {
    let mut c = config(0);
    c.heartbeat_us = 0; // the core then reports no alarm at all
    let mut n = core::ptr::null_mut();
    assert_eq!(
        unsafe { phasecast_node_create(&c, 5_000, &mut n) },
        PHASECAST_OK
    );
    let mut t = 0u64;
    assert_eq!(
        unsafe { phasecast_node_next_timeout(n, &mut t) },
        PHASECAST_OK
    );
    assert_eq!(t, 5_000 + c.tob_rto_us);
    assert_eq!(unsafe { phasecast_node_handle_timeout(n, t) }, PHASECAST_OK);
    assert_eq!(
        unsafe { phasecast_node_next_timeout(n, &mut t) },
        PHASECAST_OK
    );
    assert_eq!(t, 5_000 + 2 * c.tob_rto_us);
    assert_eq!(unsafe { phasecast_node_destroy(&mut n) }, PHASECAST_OK);
}

#[test]
fn statuses_have_names() {
    for s in [
        0u32, 1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
    ] {
        let t = unsafe { std::ffi::CStr::from_ptr(phasecast_status_str(s)) };
        assert_ne!(t.to_str().unwrap(), "unknown status", "{s}");
    }
    let t = unsafe { std::ffi::CStr::from_ptr(phasecast_status_str(999)) };
    assert_eq!(t.to_str().unwrap(), "unknown status");
    let t = unsafe { std::ffi::CStr::from_ptr(phasecast_drop_reason_str(5)) };
    assert_eq!(t.to_str().unwrap(), "duplicate");
}
