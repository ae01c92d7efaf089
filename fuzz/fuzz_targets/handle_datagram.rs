//! Arbitrary datagrams into a node, interleaved with sends, timeouts and
//! polls: nothing may panic, and a rejected datagram must change nothing
//! the application can see (no event, no received-frame count).
//!
//! Input layout: each chunk starts with a control byte; its low bits pick the
//! action, the rest of the chunk (length from the next byte) is the datagram
//! or payload. cargo-fuzz builds with `--cfg fuzzing`, so CRCs always pass
//! and the bytes reach the parser and the protocol state behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phasecast_core::{Config, Destination, GroupId, Instant, NodeId, SendOptions, SmallNode};

fuzz_target!(|data: &[u8]| {
    let members = [NodeId(0), NodeId(1), NodeId(2)];
    let cfg = Config {
        mtu: 576,
        max_message: 4096,
        heartbeat: Some(phasecast_core::Duration::from_millis(3)),
        ..Config::new(NodeId(0), &members)
    };
    let mut node = Box::new(SmallNode::new(&cfg, Instant::ZERO).expect("valid config"));
    let mut now = 0u64;
    let mut buf = [0u8; 576];
    let mut rest = data;
    while rest.len() >= 2 {
        let (ctl, len) = (rest[0], usize::from(rest[1]) * 4);
        let body = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        now += u64::from(ctl >> 4) * 500;
        let t = Instant::from_micros(now);
        match ctl & 0x7 {
            0..=3 => {
                let from = NodeId(u16::from(ctl & 0x3));
                let before = node.counters().frames_received;
                let mut datagram = body.to_vec();
                if node.handle_datagram(t, from, &mut datagram).is_err() {
                    assert_eq!(node.counters().frames_received, before);
                }
            }
            4 => {
                let dest = if ctl & 0x8 != 0 {
                    Destination::Group(GroupId::ALL)
                } else {
                    Destination::Peer(NodeId(1))
                };
                let _ = node.send(t, dest, body, SendOptions::default());
            }
            // Pledge buffers (Omaha): the first body bytes pick the call,
            // the application, the destinations and probaBuf.
            7 if body.len() >= 3 => {
                let app = u16::from(body[1] % 3);
                let dests: Vec<NodeId> = (0..4u16)
                    .filter(|i| body[2] & (1 << i) != 0)
                    .map(NodeId)
                    .collect();
                let opts = SendOptions {
                    proba_buf: f32::from(body[1]) / 200.0, // sometimes > 1: refused
                    timeout: phasecast_core::Duration::from_micros(u64::from(body[2]) * 100),
                    app,
                    critical: body[1] & 0x80 != 0,
                    ..SendOptions::default()
                };
                let _ = match body[0] % 4 {
                    0 => node.begin_pledge(t, app, &dests).map(|_| 0),
                    1 => node.pledged_send(t, &dests, &body[3..], opts),
                    2 => Ok(u32::from(node.end_pledge(t, app))),
                    _ => node.send_to(t, &dests, &body[3..], opts),
                };
            }
            5 => node.handle_timeout(t),
            6 => while node.poll_transmit(t, &mut buf).is_ok() {},
            _ => while node.poll_event().is_some() {},
        }
    }
});
