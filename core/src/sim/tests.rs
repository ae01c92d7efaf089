//! Simulator tests with toy endpoints.

use std::boxed::Box;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use super::*;

/// Events of the toy endpoint.
#[derive(Clone, Debug, PartialEq)]
enum ToyEv {
    /// Reported once by every new endpoint, with its seed.
    Started(u64),
    Got {
        from: NodeId,
        bytes: Vec<u8>,
    },
    Tick(u32),
}

#[derive(Clone, Copy, Default)]
struct Opts {
    /// Outbox capacity (0 = unbounded); `send` answers Retry when full.
    cap: usize,
    /// Reply `e` to every datagram starting with `p`.
    echo: bool,
    /// Periodic timer.
    period: Option<Duration>,
    /// On each tick, multicast a beacon `[b'b', id]` to everyone.
    beacon: bool,
}

/// A toy endpoint: an outbox of datagrams, an optional echo, an optional
/// periodic timer, counters.
struct Toy {
    id: NodeId,
    opts: Opts,
    outbox: VecDeque<(Destination, Vec<u8>)>,
    events: VecDeque<ToyEv>,
    deadline: Option<Instant>,
    ticks: u32,
    received: u32,
}

impl Toy {
    fn new(id: NodeId, seed: u64, opts: Opts) -> Self {
        Toy {
            id,
            opts,
            outbox: VecDeque::new(),
            events: VecDeque::from([ToyEv::Started(seed)]),
            deadline: opts.period.map(|p| Instant::ZERO + p),
            ticks: 0,
            received: 0,
        }
    }
    fn send(&mut self, dest: Destination, bytes: Vec<u8>) -> AppResult {
        if self.opts.cap != 0 && self.outbox.len() >= self.opts.cap {
            return AppResult::Retry;
        }
        self.outbox.push_back((dest, bytes));
        AppResult::Done
    }
}

impl Endpoint for Toy {
    type Event = ToyEv;
    fn handle_datagram(&mut self, _now: Instant, from: NodeId, bytes: &[u8]) {
        self.received += 1;
        if self.opts.echo && bytes.first() == Some(&b'p') {
            let mut reply = bytes.to_vec();
            reply[0] = b'e';
            self.outbox.push_back((Destination::Peer(from), reply));
        }
        self.events.push_back(ToyEv::Got {
            from,
            bytes: bytes.to_vec(),
        });
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ticks += 1;
        self.events.push_back(ToyEv::Tick(self.ticks));
        if self.opts.beacon {
            let id = self.id.0 as u8;
            self.outbox
                .push_back((Destination::Group(GroupId::ALL), vec![b'b', id]));
        }
        self.deadline = self.opts.period.map(|p| now + p);
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (destination, bytes) = self.outbox.pop_front()?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Some(Transmit {
            destination,
            len: bytes.len(),
        })
    }
    fn poll_event(&mut self) -> Option<ToyEv> {
        self.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
}

fn sim(cfg: SimConfig, opts: Opts) -> Sim<Toy> {
    Sim::new(cfg, move |id, seed| Toy::new(id, seed, opts))
}

const MS: u64 = 1000;

fn at_ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn at_us(us: u64) -> Instant {
    Instant::from_micros(us)
}

fn n(i: u16) -> NodeId {
    NodeId(i)
}

/// An app op sending `bytes` to `dest` (Retry while the outbox is full).
fn send(dest: Destination, bytes: Vec<u8>) -> AppOp<Toy> {
    Box::new(move |e: &mut Toy, _| e.send(dest, bytes.clone()))
}

/// An app op putting `count` datagrams of `size` bytes (first 4 bytes: index)
/// in the outbox at once, ignoring the capacity.
fn burst(dest: Destination, count: u32, size: usize) -> AppOp<Toy> {
    Box::new(move |e: &mut Toy, _| {
        for i in 0..count {
            let mut b = vec![0u8; size.max(4)];
            b[..4].copy_from_slice(&i.to_be_bytes());
            e.outbox.push_back((dest, b));
        }
        AppResult::Done
    })
}

fn to(i: u16) -> Destination {
    Destination::Peer(n(i))
}

/// (time, from, bytes) of every datagram node `at` got.
fn got(sim: &Sim<Toy>, at: NodeId) -> Vec<(Instant, NodeId, Vec<u8>)> {
    sim.events()
        .iter()
        .filter_map(|(t, node, ev)| match ev {
            ToyEv::Got { from, bytes } if *node == at => Some((*t, *from, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn index(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn const_latency(us: u64) -> LinkConfig {
    LinkConfig::with_latency(Latency::Constant(Duration::from_micros(us)))
}

// ----- determinism ----------------------------------------------------------

fn stormy_run(seed: u64) -> (Vec<(Instant, NodeId, ToyEv)>, Stats) {
    let mut cfg = SimConfig::new(6, seed);
    cfg.link = LinkConfig {
        loss: 0.1,
        duplicate: 0.1,
        reorder: 0.2,
        ..LinkConfig::with_latency(Latency::Uniform(
            Duration::from_micros(200),
            Duration::from_millis(3),
        ))
    };
    cfg.uplink_bps = Some(50_000_000);
    cfg.downlink_bps = Some(50_000_000);
    let opts = Opts {
        echo: true,
        period: Some(Duration::from_millis(7)),
        beacon: true,
        ..Opts::default()
    };
    let mut s = sim(cfg, opts);
    for k in 0..200u64 {
        let from = (k % 6) as u16;
        s.app_at(
            n(from),
            at_ms(k * 5),
            send(to(((k * 7 + 1) % 6) as u16), vec![b'p'; 900]),
        );
    }
    s.partition(&[&[n(0), n(1)], &[n(2)]], at_ms(300), at_ms(500));
    s.swizzle(at_ms(600), Duration::from_millis(20), 3);
    s.crash(n(4), at_ms(700));
    s.restart(n(4), at_ms(900));
    s.run_until(at_ms(2000));
    (s.take_events(), s.stats().clone())
}

#[test]
fn determinism_same_seed_same_run_different_seed_differs() {
    let (ev_a, st_a) = stormy_run(11);
    let (ev_b, st_b) = stormy_run(11);
    let (ev_c, st_c) = stormy_run(12);
    assert!(
        ev_a.len() > 1000,
        "the run must do real work: {}",
        ev_a.len()
    );
    assert!(st_a.total.lost > 0 && st_a.total.duplicated > 0 && st_a.total.reordered > 0);
    assert!(st_a.total.dropped_partition > 0 && st_a.total.clogged > 0);
    assert_eq!(ev_a, ev_b);
    assert_eq!(st_a, st_b);
    assert_ne!(ev_a, ev_c);
    assert_ne!(st_a, st_c);
}

// ----- latency --------------------------------------------------------------

#[test]
fn constant_latency_is_exact() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.link = const_latency(5 * MS);
    let mut s = sim(cfg, Opts::default());
    s.app_at(n(0), at_ms(3), send(to(1), b"hi".to_vec()));
    s.run_until(at_ms(7));
    assert!(got(&s, n(1)).is_empty(), "not before 3 + 5 ms");
    s.run_until(at_ms(100));
    assert_eq!(got(&s, n(1)), vec![(at_ms(8), n(0), b"hi".to_vec())]);
    assert_eq!(s.now(), at_ms(100));
}

fn latency_samples(latency: Latency, count: u32) -> Vec<f64> {
    let mut cfg = SimConfig::new(2, 99);
    cfg.link = LinkConfig::with_latency(latency);
    cfg.header_bytes = 0;
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(to(1), count, 4));
    s.run_until(at_ms(10_000));
    let g = got(&s, n(1));
    assert_eq!(g.len(), count as usize);
    g.iter().map(|(t, _, _)| t.as_micros() as f64).collect()
}

#[test]
fn normal_latency_mean_and_sd_within_tolerance() {
    let xs = latency_samples(
        Latency::Normal {
            mean: Duration::from_millis(10),
            sd: Duration::from_millis(2),
        },
        20_000,
    );
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
    let sd = var.sqrt();
    assert!((mean - 10_000.0).abs() < 100.0, "mean {mean}");
    assert!((sd - 2_000.0).abs() < 60.0, "sd {sd}");
}

#[test]
fn normal_latency_is_truncated_at_zero() {
    let xs = latency_samples(
        Latency::Normal {
            mean: Duration::from_micros(100),
            sd: Duration::from_millis(1),
        },
        5_000,
    );
    let zeros = xs.iter().filter(|&&x| x == 0.0).count();
    // P(N(0.1, 1) < 0) ~ 46 %.
    assert!((2_000..2_600).contains(&zeros), "{zeros}");
}

#[test]
fn uniform_latency_stays_in_bounds_and_covers_them() {
    let xs = latency_samples(
        Latency::Uniform(Duration::from_millis(1), Duration::from_millis(3)),
        10_000,
    );
    assert!(xs.iter().all(|&x| (1000.0..=3000.0).contains(&x)));
    let lo = xs.iter().cloned().fold(f64::MAX, f64::min);
    let hi = xs.iter().cloned().fold(0.0, f64::max);
    assert!(lo < 1010.0 && hi > 2990.0, "{lo} {hi}");
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    assert!((mean - 2000.0).abs() < 30.0, "{mean}");
}

// ----- bandwidth ------------------------------------------------------------

#[test]
fn uplink_10mbps_1000x1250_bytes_takes_one_second_and_is_pulled() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.link = const_latency(0);
    cfg.header_bytes = 0;
    cfg.uplink_bps = Some(10_000_000);
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(to(1), 1000, 1250));
    s.run_until(at_ms(500));
    // Pull architecture: the host took datagrams only as the link freed, so
    // about half are still in the endpoint's own queue.
    let left = s.node(n(0)).outbox.len();
    assert!((499..=501).contains(&left), "{left}");
    s.run_until(at_ms(2000));
    let g = got(&s, n(1));
    assert_eq!(g.len(), 1000);
    assert_eq!(g[0].0, at_ms(1), "1250 B at 10 Mb/s = 1 ms");
    assert_eq!(g[999].0, at_ms(1000));
    assert!(g
        .iter()
        .enumerate()
        .all(|(i, (_, _, b))| index(b) == i as u32));
}

#[test]
fn header_bytes_take_serialization_time_and_are_counted_apart() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.link = const_latency(0);
    cfg.uplink_bps = Some(8_000_000); // 1 byte per µs
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(to(1), 10, 972));
    s.run_until(at_ms(100));
    let g = got(&s, n(1));
    assert_eq!(g.last().map(|x| x.0), Some(at_us(10 * 1000)));
    let st = s.stats();
    assert_eq!(st.node(n(0)).sent_payload_bytes, 9720);
    assert_eq!(st.node(n(0)).sent_header_bytes, 280);
    assert_eq!(st.node(n(1)).received_payload_bytes, 9720);
    assert_eq!(st.node(n(1)).received_header_bytes, 280);
    assert_eq!(st.total.sent_payload_bytes, 9720);
}

#[test]
fn multicast_costs_one_uplink_serialization() {
    let mut cfg = SimConfig::new(4, 1);
    cfg.link = const_latency(0);
    cfg.header_bytes = 0;
    cfg.uplink_bps = Some(10_000_000);
    cfg.downlink_bps = Some(10_000_000);
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(Destination::Group(GroupId::ALL), 100, 1250));
    s.run_until(at_ms(1000));
    for r in 1..4 {
        let g = got(&s, n(r));
        assert_eq!(g.len(), 100);
        // Uplink 1 ms + downlink 1 ms for the first, then pipelined.
        assert_eq!(g[0].0, at_ms(2));
        assert_eq!(
            g[99].0,
            at_ms(101),
            "one serialization per multicast, not three"
        );
    }
    assert!(got(&s, n(0)).is_empty(), "the sender is excluded");
    let st = s.stats();
    assert_eq!(st.total.sent_multicast, 100);
    assert_eq!(st.total.sent_unicast, 0);
    assert_eq!(st.node(n(0)).sent_payload_bytes, 125_000);
    assert_eq!(st.total.received, 300);
}

#[test]
fn multicast_reaches_only_group_members() {
    let mut s = sim(SimConfig::new(4, 1), Opts::default());
    s.set_group(GroupId(7), &[n(0), n(1), n(2), NodeId(99)]);
    s.app(n(0), send(Destination::Group(GroupId(7)), b"g".to_vec()));
    s.app(
        n(0),
        send(Destination::Group(GroupId(8)), b"nobody".to_vec()),
    );
    s.run_until(at_ms(10));
    assert_eq!(got(&s, n(1)).len(), 1);
    assert_eq!(got(&s, n(2)).len(), 1);
    assert!(got(&s, n(3)).is_empty() && got(&s, n(0)).is_empty());
    assert_eq!(s.stats().total.sent_multicast, 2);
    assert_eq!(s.stats().total.received, 2);
}

fn contention(queue: Option<usize>) -> Sim<Toy> {
    let mut cfg = SimConfig::new(3, 1);
    cfg.link = const_latency(0);
    cfg.header_bytes = 0;
    cfg.uplink_bps = Some(10_000_000);
    cfg.downlink_bps = Some(10_000_000);
    cfg.downlink_queue = queue;
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(to(2), 500, 1250));
    s.app(n(1), burst(to(2), 500, 1250));
    s
}

#[test]
fn downlink_contention_from_two_senders_halves_each_rate() {
    let mut s = contention(None);
    s.run_until(at_ms(500));
    for sender in [n(0), n(1)] {
        let c = got(&s, n(2)).iter().filter(|g| g.1 == sender).count();
        // Alone, a sender would get 500 through in 0.5 s.
        assert!((245..=255).contains(&c), "{sender:?}: {c}");
    }
    s.run_until(at_ms(3000));
    let g = got(&s, n(2));
    assert_eq!(g.len(), 1000);
    let last = g.last().unwrap().0;
    assert!((at_ms(1000)..=at_ms(1002)).contains(&last), "{last:?}");
    assert_eq!(s.stats().total.dropped_queue, 0);
}

#[test]
fn bounded_downlink_queue_drops_tail() {
    let mut s = contention(Some(10));
    s.run_until(at_ms(3000));
    let st = s.stats().node(n(2));
    assert_eq!(st.received + st.dropped_queue, 1000);
    assert!((495..=520).contains(&st.received), "{st:?}");
    let g = got(&s, n(2));
    assert!(g.last().unwrap().0 <= at_ms(512));
}

// ----- loss, duplication, reordering ---------------------------------------

fn faulty_link(link: LinkConfig, count: u32) -> Sim<Toy> {
    let mut cfg = SimConfig::new(2, 5);
    cfg.link = link;
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), burst(to(1), count, 8));
    s.run_until(at_ms(1000));
    s
}

#[test]
fn loss_rate_within_tolerance() {
    let s = faulty_link(
        LinkConfig {
            loss: 0.2,
            ..LinkConfig::default()
        },
        20_000,
    );
    let st = s.stats().total;
    assert_eq!(st.received + st.lost, 20_000);
    assert!((15_600..=16_400).contains(&st.received), "{st:?}");
}

#[test]
fn duplication_rate_within_tolerance() {
    let s = faulty_link(
        LinkConfig {
            duplicate: 0.3,
            ..LinkConfig::default()
        },
        20_000,
    );
    let st = s.stats().total;
    assert_eq!(st.received, 20_000 + st.duplicated);
    assert!((5_600..=6_400).contains(&st.duplicated), "{st:?}");
    assert_eq!(st.lost, 0);
}

#[test]
fn reorder_delays_a_fraction_and_lets_later_datagrams_overtake() {
    let mut cfg = SimConfig::new(2, 8);
    cfg.link = LinkConfig {
        reorder: 0.3,
        reorder_delay: Latency::Uniform(Duration::ZERO, Duration::from_millis(5)),
        ..const_latency(MS)
    };
    let mut s = sim(cfg, Opts::default());
    for i in 0..2000u32 {
        s.app_at(
            n(0),
            at_us(u64::from(i) * 100),
            send(to(1), i.to_be_bytes().to_vec()),
        );
    }
    s.run_until(at_ms(1000));
    let st = s.stats().total;
    assert!((500..=700).contains(&st.reordered), "{st:?}");
    let order: Vec<u32> = got(&s, n(1)).iter().map(|g| index(&g.2)).collect();
    assert_eq!(order.len(), 2000);
    let inversions = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 100, "{inversions}");
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..2000).collect::<Vec<u32>>());
}

// ----- partitions, cuts, crashes, swizzle -----------------------------------

#[test]
fn partition_drops_cross_traffic_and_heal_restores() {
    let mut s = sim(SimConfig::new(4, 1), Opts::default());
    s.partition(&[&[n(0), n(1)], &[n(2), n(3)]], at_ms(10), at_ms(20));
    for t in [5, 15, 25] {
        s.app_at(
            n(0),
            at_ms(t),
            send(Destination::Group(GroupId::ALL), vec![t as u8]),
        );
    }
    s.app_at(n(2), at_ms(15), send(to(3), b"same side".to_vec()));
    s.run_until(at_ms(100));
    let bytes = |r| {
        got(&s, n(r))
            .iter()
            .map(|g| g.2.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(bytes(1), vec![vec![5], vec![15], vec![25]]);
    assert_eq!(bytes(2), vec![vec![5], vec![25]]);
    assert_eq!(bytes(3), vec![vec![5], b"same side".to_vec(), vec![25]]);
    assert_eq!(s.stats().total.dropped_partition, 2);
}

#[test]
fn nodes_outside_partition_groups_form_one_group() {
    let mut s = sim(SimConfig::new(4, 1), Opts::default());
    s.partition(&[&[n(0)]], at_ms(0), Instant::MAX);
    s.app_at(
        n(1),
        at_ms(1),
        send(Destination::Group(GroupId::ALL), b"x".to_vec()),
    );
    s.run_until(at_ms(100));
    assert!(got(&s, n(0)).is_empty());
    assert_eq!(got(&s, n(2)).len(), 1);
    assert_eq!(got(&s, n(3)).len(), 1);
}

#[test]
fn one_way_cut_blocks_one_direction_only() {
    let mut s = sim(SimConfig::new(2, 1), Opts::default());
    s.cut(n(0), n(1), at_ms(0), at_ms(10));
    s.app_at(n(0), at_ms(5), send(to(1), b"lost".to_vec()));
    s.app_at(n(1), at_ms(5), send(to(0), b"back".to_vec()));
    s.app_at(n(0), at_ms(15), send(to(1), b"healed".to_vec()));
    s.run_until(at_ms(100));
    let g1: Vec<_> = got(&s, n(1)).into_iter().map(|g| g.2).collect();
    assert_eq!(g1, vec![b"healed".to_vec()]);
    assert_eq!(got(&s, n(0)).len(), 1);
    assert_eq!(s.stats().node(n(1)).dropped_partition, 1);
}

#[test]
fn crash_stops_delivery_and_restart_builds_fresh_endpoint() {
    let opts = Opts {
        period: Some(Duration::from_millis(4)),
        ..Opts::default()
    };
    let mut s = sim(SimConfig::new(3, 1), opts);
    s.crash(n(1), at_ms(10));
    s.restart(n(1), at_ms(30));
    for t in [5, 15, 35] {
        s.app_at(n(0), at_ms(t), send(to(1), vec![t as u8]));
    }
    s.app_at(n(1), at_ms(20), send(to(2), b"from the dead".to_vec()));
    s.run_until(at_ms(40));
    assert!(s.is_up(n(1)));
    assert_eq!(s.incarnation(n(1)), 1);
    let g: Vec<_> = got(&s, n(1)).into_iter().map(|g| (g.0, g.2)).collect();
    assert_eq!(g, vec![(at_us(5100), vec![5]), (at_us(35100), vec![35])]);
    assert_eq!(s.node(n(1)).received, 1, "the endpoint is fresh");
    let ev1: Vec<_> = s.events().iter().filter(|e| e.1 == n(1)).collect();
    assert!(
        ev1.iter().all(|e| e.0 <= at_ms(10) || e.0 >= at_ms(30)),
        "{ev1:?}"
    );
    let ticks: Vec<_> = ev1
        .iter()
        .filter(|e| matches!(e.2, ToyEv::Tick(_)))
        .map(|e| e.0)
        .collect();
    // The fresh endpoint's first deadline (4 ms) is already past at the
    // restart: it fires at once, then every 4 ms.
    assert_eq!(
        ticks,
        vec![at_ms(4), at_ms(8), at_ms(30), at_ms(34), at_ms(38)]
    );
    let seeds: Vec<_> = ev1
        .iter()
        .filter_map(|e| match e.2 {
            ToyEv::Started(seed) => Some(seed),
            _ => None,
        })
        .collect();
    assert_eq!(seeds.len(), 2);
    assert_ne!(seeds[0], seeds[1], "a restart gets a fresh seed");
    assert!(
        got(&s, n(2)).is_empty(),
        "ops for a down node are discarded"
    );
    let st = s.stats().node(n(1));
    assert_eq!((st.dropped_crash, st.app_dropped), (1, 1));
}

#[test]
fn in_flight_output_of_crashed_node_still_arrives() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.link = const_latency(2 * MS);
    let mut s = sim(cfg, Opts::default());
    s.app_at(n(0), at_ms(9), send(to(1), b"last words".to_vec()));
    s.crash(n(0), at_ms(10));
    s.run_until(at_ms(100));
    assert_eq!(
        got(&s, n(1)),
        vec![(at_ms(11), n(0), b"last words".to_vec())]
    );
}

#[test]
fn swizzle_delays_then_restores_without_loss() {
    let mut cfg = SimConfig::new(3, 4);
    cfg.link = const_latency(MS);
    let mut s = sim(cfg, Opts::default());
    // All three nodes: clogged at 10, 20, 30 ms; unclogged at 40, 50, 60 ms.
    s.swizzle(at_ms(10), Duration::from_millis(10), 3);
    for t in [5, 35, 70] {
        s.app_at(n(0), at_ms(t), send(to(1), vec![t as u8]));
    }
    s.run_until(at_ms(200));
    let g: Vec<_> = got(&s, n(1)).into_iter().map(|g| (g.0, g.2)).collect();
    assert_eq!(g.len(), 3);
    assert_eq!(g[0], (at_ms(6), vec![5]));
    // Held until both 0 and 1 are unclogged (the second of their unclogs).
    assert!(g[1].0 == at_ms(51) || g[1].0 == at_ms(61), "{g:?}");
    assert_eq!(g[1].1, vec![35]);
    assert_eq!(g[2], (at_ms(71), vec![70]));
    let st = s.stats().total;
    assert_eq!((st.clogged, st.lost, st.dropped_partition), (1, 0, 0));
}

#[test]
fn clog_holds_a_sleeping_nodes_traffic_until_it_wakes() {
    let mut cfg = SimConfig::new(2, 4);
    cfg.link = const_latency(MS);
    let mut s = sim(cfg, Opts::default());
    // Node 1 sleeps from 10 to 60 ms.
    s.clog(n(1), at_ms(10), at_ms(60));
    for t in [5, 20, 70] {
        s.app_at(n(0), at_ms(t), send(to(1), vec![t as u8]));
    }
    s.run_until(at_ms(200));
    let g: Vec<_> = got(&s, n(1)).into_iter().map(|g| (g.0, g.2)).collect();
    assert_eq!(
        g,
        vec![
            (at_ms(6), vec![5]),
            (at_ms(61), vec![20]), // held, then a fresh latency
            (at_ms(71), vec![70]),
        ]
    );
    assert_eq!(s.stats().total.lost, 0);
}

#[test]
fn heal_all_ends_faults_and_restarts_crashed_nodes() {
    let mut cfg = SimConfig::new(3, 1);
    cfg.link.loss = 1.0;
    let mut s = sim(cfg, Opts::default());
    s.crash(n(2), at_ms(1));
    s.partition(&[&[n(0)], &[n(1)]], at_ms(1), Instant::MAX);
    s.cut(n(1), n(0), at_ms(1), Instant::MAX);
    s.swizzle(at_ms(1), Duration::from_millis(1), 3);
    s.app_at(n(0), at_ms(5), send(to(1), b"lost".to_vec()));
    s.heal_all(at_ms(10), true);
    s.app_at(
        n(0),
        at_ms(20),
        send(Destination::Group(GroupId::ALL), b"ok".to_vec()),
    );
    s.app_at(n(1), at_ms(20), send(to(0), b"ok".to_vec()));
    s.run_until(at_ms(100));
    assert!(s.is_up(n(2)));
    assert_eq!(s.link(n(0), n(1)).loss, 0.0);
    assert_eq!(got(&s, n(0)).len(), 1);
    assert_eq!(got(&s, n(1)).len(), 1);
    assert_eq!(got(&s, n(2)).len(), 1);
}

// ----- application layer, timers, hook --------------------------------------

#[test]
fn app_retry_ops_run_in_order_until_done() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.header_bytes = 0;
    cfg.uplink_bps = Some(10_000_000);
    let opts = Opts {
        cap: 2,
        ..Opts::default()
    };
    let mut s = sim(cfg, opts);
    for i in 0..10u32 {
        let mut b = vec![0u8; 1250];
        b[..4].copy_from_slice(&i.to_be_bytes());
        s.app_at(n(0), Instant::ZERO, send(to(1), b));
    }
    // A later op must wait behind the retried ones, not overtake them.
    s.app_at(n(0), at_us(500), send(to(1), 10u32.to_be_bytes().to_vec()));
    s.run_until(at_ms(100));
    let order: Vec<u32> = got(&s, n(1)).iter().map(|g| index(&g.2)).collect();
    assert_eq!(order, (0..11).collect::<Vec<u32>>());
    let st = s.stats().node(n(0));
    assert_eq!(st.app_done, 11);
    assert!(st.app_retries >= 8, "{st:?}");
}

#[test]
fn timers_fire_and_stale_wakeups_are_ignored() {
    let mut s = sim(SimConfig::new(1, 1), Opts::default());
    let set = |d: u64| -> AppOp<Toy> {
        Box::new(move |e: &mut Toy, _| {
            e.deadline = Some(at_ms(d));
            AppResult::Done
        })
    };
    s.app_at(n(0), at_ms(5), set(50));
    s.app_at(n(0), at_ms(10), set(20)); // earlier: replaces 50
    s.app_at(n(0), at_ms(30), set(60));
    s.app_at(n(0), at_ms(40), set(45)); // earlier: replaces 60
    s.run_until(at_ms(100));
    let ticks: Vec<_> = s
        .events()
        .iter()
        .filter(|e| matches!(e.2, ToyEv::Tick(_)))
        .map(|e| e.0)
        .collect();
    assert_eq!(ticks, vec![at_ms(20), at_ms(45)]);
}

#[test]
fn reactive_hook_drives_a_ping_pong() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.link = const_latency(MS);
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), send(to(1), vec![0]));
    let mut seen = 0;
    s.run_until_with(
        at_ms(1000),
        &mut |ctl: &mut SimCtl<'_, Toy>, d: Delivered<ToyEv>| {
            seen += 1;
            if let ToyEv::Got { from, bytes } = d.event {
                if bytes[0] < 19 {
                    assert_eq!(ctl.now(), d.at);
                    ctl.app(d.node, send(Destination::Peer(from), vec![bytes[0] + 1]));
                }
            }
        },
    );
    let last = got(&s, n(1)).last().cloned().unwrap();
    assert_eq!(last, (at_ms(19), n(0), vec![18]));
    assert_eq!(got(&s, n(0)).last().unwrap().0, at_ms(20));
    assert_eq!(s.stats().total.received, 20);
    assert_eq!(seen, s.events().len());
}

// ----- recording ------------------------------------------------------------

#[test]
fn trace_records_sends_and_deliveries_only_when_enabled() {
    for on in [false, true] {
        let mut cfg = SimConfig::new(3, 1);
        cfg.trace = on;
        cfg.link.loss = 0.0;
        let mut s = sim(cfg, Opts::default());
        s.app(n(0), send(to(1), b"u".to_vec()));
        s.app(n(0), send(Destination::Group(GroupId::ALL), b"mm".to_vec()));
        s.run_until(at_ms(10));
        let tr = s.trace();
        if !on {
            assert!(tr.is_empty());
            continue;
        }
        let sent = tr.iter().filter(|r| r.kind == TraceKind::Sent).count();
        let delivered: Vec<_> = tr
            .iter()
            .filter_map(|r| match r.kind {
                TraceKind::Delivered { to } => Some((to, r.len, r.at)),
                _ => None,
            })
            .collect();
        assert_eq!(sent, 2);
        assert_eq!(delivered.len(), 3);
        assert!(delivered.contains(&(n(2), 2, at_us(100))));
        // Copies join their transmission by number and keep its destination.
        let mcast: Vec<_> = tr.iter().filter(|r| r.datagram == 2).collect();
        assert_eq!(mcast.len(), 3, "{mcast:?}");
        assert!(mcast
            .iter()
            .all(|r| r.destination == Destination::Group(GroupId::ALL) && r.len == 2));
        assert_eq!(mcast[0].kind, TraceKind::Sent);
    }
}

#[test]
fn events_can_be_left_unrecorded() {
    let mut cfg = SimConfig::new(2, 1);
    cfg.record_events = false;
    let mut s = sim(cfg, Opts::default());
    s.app(n(0), send(to(1), b"x".to_vec()));
    s.run_until(at_ms(10));
    assert!(s.events().is_empty());
    assert_eq!(s.stats().total.events, 3, "2 Started + 1 Got");
}

// ----- fault plans ----------------------------------------------------------

#[test]
fn fault_plan_random_is_seeded_and_within_ranges() {
    let a = FaultPlan::random(3, 5, Duration::from_secs(1));
    assert_eq!(a, FaultPlan::random(3, 5, Duration::from_secs(1)));
    let plans: Vec<_> = (0..50)
        .map(|s| FaultPlan::random(s, 5, Duration::from_secs(1)))
        .collect();
    assert!(plans.windows(2).all(|w| w[0] != w[1]));
    for p in &plans {
        assert!((0.0..0.3).contains(&p.loss));
        assert!((0.0..0.5).contains(&p.duplicate));
        assert!((0.0..0.3).contains(&p.reorder));
        assert!(p.crashes.len() <= 2, "at most (5 - 1) / 2 crash victims");
        let all = p.crashes.iter().map(|c| c.1);
        let ends = p
            .partitions
            .iter()
            .map(|x| x.2)
            .chain(p.cuts.iter().map(|x| x.3));
        assert!(all.chain(ends).all(|t| t <= p.fault_phase));
    }
    assert!(plans.iter().any(|p| !p.crashes.is_empty()));
    assert!(plans.iter().any(|p| !p.partitions.is_empty()));
    assert!(plans.iter().any(|p| !p.swizzles.is_empty()));
}

fn vopr_run(seed: u64) -> Sim<Toy> {
    let opts = Opts {
        period: Some(Duration::from_millis(10)),
        beacon: true,
        ..Opts::default()
    };
    let mut s = sim(SimConfig::new(5, seed), opts);
    s.run_until(at_ms(50));
    let plan = FaultPlan::random(seed, 5, Duration::from_secs(1));
    plan.apply(&mut s);
    s.run_until(at_ms(50) + plan.liveness_start() + Duration::from_secs(1));
    s
}

#[test]
fn fault_plan_liveness_phase_converges_and_replays() {
    for seed in 0..8 {
        let s = vopr_run(seed);
        let heal = at_ms(1050);
        for r in 0..5 {
            assert!(s.is_up(n(r)), "seed {seed}: node {r} down after heal");
            // In the liveness phase (after a settling margin) every node hears
            // every other node's beacons.
            let heard: Vec<NodeId> = got(&s, n(r))
                .iter()
                .filter(|g| g.0 > heal + Duration::from_millis(100))
                .map(|g| g.1)
                .collect();
            for other in (0..5).filter(|&o| o != r) {
                let c = heard.iter().filter(|&&f| f == n(other)).count();
                assert!(c >= 85, "seed {seed}: {r} heard {other} {c} times");
            }
        }
        let again = vopr_run(seed);
        assert_eq!(s.events(), again.events());
        assert_eq!(s.stats(), again.stats());
    }
}
