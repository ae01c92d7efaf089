//! Omaha pledge buffers through the engine (Algorithm 1 of §A.2): what
//! leaves when, in how many datagrams, and what an error leaves unchanged.

use phasecast_core::wire::{self, Record, RecordRepr};
use phasecast_core::{
    Aggregation, Config, Destination, Duration, Error, Event, Instant, Node, NodeId, SendOptions,
};

type TestNode = Node<8, 16, 64, 512, 16384, 1400>;

const A: u16 = 1;
const B: u16 = 2;

fn node(id: u16, aggregation: Aggregation) -> Box<TestNode> {
    let members: Vec<NodeId> = (0..4).map(NodeId).collect();
    let mut c = Config::new(NodeId(id), &members);
    c.mtu = 1400;
    c.aggregation = aggregation;
    Box::new(TestNode::new(&c, Instant::ZERO).expect("valid config"))
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn opts(app: u16, proba_buf: f32, timeout_ms: u64) -> SendOptions {
    SendOptions {
        proba_buf,
        timeout: Duration::from_millis(timeout_ms),
        app,
        ..SendOptions::default()
    }
}

/// Every datagram `n` may send at `now`: (destination, application message ids).
fn drain(n: &mut TestNode, now: Instant) -> Vec<(Destination, Vec<u32>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1400];
    while let Ok(tx) = n.poll_transmit(now, &mut buf) {
        assert!(tx.len <= 1400);
        let mut frame = buf[..tx.len].to_vec();
        let f = wire::decode_in_place(wire::Integrity::Crc32c, &mut frame).expect("valid frame");
        let msgs = f
            .records()
            .filter_map(|r| match r {
                Record::Known(RecordRepr::Data { msg, .. }) => Some(msg.0),
                Record::Known(RecordRepr::Fragment { msg, .. }) => Some(msg.0),
                _ => None,
            })
            .collect();
        out.push((tx.destination, msgs));
    }
    out
}

fn peer(id: u16) -> Destination {
    Destination::Peer(NodeId(id))
}

#[test]
fn a_foreign_pledge_holds_the_message_until_the_pledged_send() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(1), NodeId(2)]).unwrap();
    let m1 = n
        .send_to(t(1), &[NodeId(1)], b"ack of A", opts(A, 1.0, 60))
        .unwrap();
    assert!(drain(&mut n, t(1)).is_empty(), "buffered behind B's pledge");
    assert_eq!(n.poll_timeout(), Some(t(61)), "deadline = now + timeout");
    assert_eq!(n.counters().messages_buffered, 1);
    // B's quorum is reached: its accept leaves with A's ack in one datagram.
    let m2 = n
        .pledged_send(
            t(30),
            &[NodeId(1), NodeId(2)],
            b"accept of B",
            opts(B, 0.0, 60),
        )
        .unwrap();
    let sent = drain(&mut n, t(30));
    assert_eq!(sent.len(), 2);
    assert!(sent.contains(&(peer(1), vec![m1, m2])));
    assert!(sent.contains(&(peer(2), vec![m2])));
    assert!(n.pledges().is_empty(), "pledged_send removed B's pledge");
}

#[test]
fn the_deadline_sends_the_buffer_as_one_datagram() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(3)]).unwrap();
    let a = n
        .send_to(t(0), &[NodeId(3)], b"one", opts(A, 1.0, 100))
        .unwrap();
    let b = n
        .send_to(t(10), &[NodeId(3)], b"two", opts(A, 1.0, 20))
        .unwrap();
    // The deadline moved earlier: 10 + 20.
    assert_eq!(n.poll_timeout(), Some(t(30)));
    assert!(drain(&mut n, t(29)).is_empty());
    n.handle_timeout(t(30));
    assert_eq!(drain(&mut n, t(30)), vec![(peer(3), vec![a, b])]);
    assert_eq!(
        n.counters().sent_because[phasecast_core::SendReason::Deadline as usize],
        1
    );
    assert_eq!(n.poll_timeout(), None);
}

#[test]
fn proba_zero_flushes_what_was_buffered() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    let a = n
        .send_to(t(0), &[NodeId(1)], b"x", opts(A, 1.0, 100))
        .unwrap();
    let b = n
        .send_to(t(1), &[NodeId(1)], b"y", opts(A, 0.0, 100))
        .unwrap();
    assert_eq!(drain(&mut n, t(1)), vec![(peer(1), vec![a, b])]);
    assert_eq!(n.poll_timeout(), None, "the deadline was cancelled");
}

#[test]
fn no_buffering_without_a_foreign_pledge() {
    let mut n = node(0, Aggregation::Omaha);
    let a = n
        .send_to(t(0), &[NodeId(1)], b"x", opts(A, 1.0, 100))
        .unwrap();
    assert_eq!(drain(&mut n, t(0)), vec![(peer(1), vec![a])]);
    // The application's own pledge does not count.
    n.begin_pledge(t(1), A, &[NodeId(1)]).unwrap();
    let b = n
        .send_to(t(1), &[NodeId(1)], b"y", opts(A, 1.0, 100))
        .unwrap();
    assert_eq!(drain(&mut n, t(1)), vec![(peer(1), vec![b])]);
    // A pledge covering another destination does not count either.
    n.begin_pledge(t(2), B, &[NodeId(2)]).unwrap();
    let c = n
        .send_to(t(2), &[NodeId(1)], b"z", opts(A, 1.0, 100))
        .unwrap();
    assert_eq!(drain(&mut n, t(2)), vec![(peer(1), vec![c])]);
}

#[test]
fn a_buffer_over_the_mtu_leaves_in_several_datagrams() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    let big = vec![7u8; 600];
    let a = n
        .send_to(t(0), &[NodeId(1)], &big, opts(A, 1.0, 100))
        .unwrap();
    let b = n
        .send_to(t(0), &[NodeId(1)], &big, opts(A, 1.0, 100))
        .unwrap();
    assert!(
        drain(&mut n, t(0)).is_empty(),
        "1200 bytes still fit one datagram"
    );
    // The third copy reaches the bound: flush rather than wait or refuse.
    let c = n
        .send_to(t(0), &[NodeId(1)], &big, opts(A, 1.0, 100))
        .unwrap();
    let sent = drain(&mut n, t(0));
    assert_eq!(sent, vec![(peer(1), vec![a, b]), (peer(1), vec![c])]);
}

#[test]
fn time_based_buffers_without_pledges_and_none_never_buffers() {
    let mut tb = node(0, Aggregation::TimeBased);
    let a = tb
        .send_to(t(0), &[NodeId(1)], b"x", opts(A, 0.0, 50))
        .unwrap();
    let b = tb
        .send_to(t(5), &[NodeId(1)], b"y", opts(A, 0.0, 50))
        .unwrap();
    assert!(drain(&mut tb, t(5)).is_empty());
    tb.handle_timeout(t(50));
    assert_eq!(drain(&mut tb, t(50)), vec![(peer(1), vec![a, b])]);

    let mut none = node(0, Aggregation::None);
    none.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    let c = none
        .send_to(t(0), &[NodeId(1)], b"x", opts(A, 1.0, 50))
        .unwrap();
    assert_eq!(drain(&mut none, t(0)), vec![(peer(1), vec![c])]);
}

#[test]
fn engine_traffic_flushes_a_pledge_buffer() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    let a = n
        .send_to(t(0), &[NodeId(1)], b"x", opts(A, 1.0, 100))
        .unwrap();
    assert!(drain(&mut n, t(0)).is_empty());
    // A point-to-point message of the default options (probaBuf = 0), as the
    // engine's own records are sent, carries the buffered one.
    let b = n.send(t(1), peer(1), b"y", SendOptions::default()).unwrap();
    assert_eq!(drain(&mut n, t(1)), vec![(peer(1), vec![a, b])]);
}

#[test]
fn errors_change_nothing() {
    let mut n = node(0, Aggregation::Omaha);
    n.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    // Unknown destination: the pledge stays, nothing is queued.
    assert_eq!(
        n.pledged_send(t(1), &[NodeId(1), NodeId(9)], b"x", opts(B, 0.0, 10)),
        Err(Error::NotMember)
    );
    assert_eq!(n.pledges().len(), 1);
    assert_eq!(n.begin_pledge(t(1), A, &[NodeId(0)]), Err(Error::NotMember));
    assert_eq!(n.pledges().len(), 1);
    assert!(matches!(
        n.send_to(t(1), &[NodeId(1)], b"x", opts(A, 1.5, 10)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        n.send_to(t(1), &[NodeId(1)], b"x", opts(A, f32::NAN, 10)),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(
        n.send_to(t(1), &[NodeId(1)], &vec![0u8; 70_000], opts(A, 0.0, 10)),
        Err(Error::Oversized)
    );
    assert!(drain(&mut n, t(1)).is_empty());
    assert_eq!(n.counters().messages_accepted, 0);
    // A full queue towards one destination refuses the whole multi-send.
    let mut accepted = 0;
    while n
        .send(t(2), peer(2), b"fill", SendOptions::default())
        .is_ok()
    {
        accepted += 1;
    }
    assert_eq!(
        n.send_to(t(2), &[NodeId(1), NodeId(2)], b"x", opts(A, 0.0, 10)),
        Err(Error::Full)
    );
    assert_eq!(n.counters().messages_accepted, accepted);
    let sent = drain(&mut n, t(2));
    assert!(sent.iter().all(|(d, _)| *d == peer(2)), "nothing went to 1");
}

#[test]
fn buffered_messages_arrive_intact() {
    let mut a = node(0, Aggregation::Omaha);
    let mut b = node(1, Aggregation::Omaha);
    a.begin_pledge(t(0), B, &[NodeId(1)]).unwrap();
    a.send_to(t(0), &[NodeId(1)], b"first", opts(A, 1.0, 40))
        .unwrap();
    a.send_to(t(1), &[NodeId(1)], b"second", opts(A, 1.0, 40))
        .unwrap();
    a.handle_timeout(t(40));
    let mut buf = vec![0u8; 1400];
    let tx = a.poll_transmit(t(40), &mut buf).unwrap();
    b.handle_datagram(t(41), NodeId(0), &mut buf[..tx.len])
        .unwrap();
    let mut got = Vec::new();
    while let Some(ev) = b.poll_event() {
        if let Event::Received { from, payload, .. } = ev {
            got.push((from, payload.to_vec()));
        }
    }
    assert_eq!(
        got,
        vec![
            (NodeId(0), b"first".to_vec()),
            (NodeId(0), b"second".to_vec())
        ]
    );
}
