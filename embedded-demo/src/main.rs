//! Three phasecast nodes on one emulated Cortex-M4F, in uniform total order.
//!
//! The image runs on QEMU's `mps2-an386` board (`qemu-run.sh`). Three
//! embassy-net stacks (10.0.0.1–3) share an in-memory Ethernet segment
//! ([`link::switch`]); each runs one phasecast node on UDP port 7400,
//! driven by [`adapter::run`]. Every node broadcasts a temperature-like
//! reading every 100 ms through the total order (`Node::broadcast`) and
//! logs every `Event::Delivered`.
//!
//! After [`SEND_FOR`] the sensors stop; after [`SETTLE`] more the supervisor
//! compares the three delivery sequences (count, last sequence number and an
//! FNV-1a hash over `(sn, sender, payload)` of every delivery, in order) and
//! ends the run through semihosting: exit status 0 only if all three nodes
//! delivered the same sequence, it holds every reading that was accepted
//! for broadcast, and at least [`MIN_DELIVERIES`] of them.
#![no_std]
#![no_main]

mod executor;
mod logger;
mod time_driver;

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_semihosting::debug::{self, EXIT_SUCCESS};
use embassy_executor::{raw, Spawner};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr, Stack, StackResources};
use embassy_net_driver_channel as ch;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_time::{Duration, Ticker, Timer};
use phasecast_core::{Config, Duration as CoreDuration, Event, Node, NodeId};
use phasecast_embedded_demo::adapter::{self, LinkStats, NodeCell, Routes};
use phasecast_embedded_demo::link::{self, SwitchStats, ETHERNET_HEADER_LEN};
use static_cell::StaticCell;

// ---------------------------------------------------------------------------
// Sizing: the node's capacities (see README, "Firmware on embedded nodes").
// ---------------------------------------------------------------------------

/// Largest cluster this build accepts (the demo runs 3).
const MAX_MEMBERS: usize = 8;
/// One sink per member plus one for the whole cluster.
const SINKS: usize = MAX_MEMBERS + 1;
/// Messages per class queue of each sink.
const QUEUE: usize = 8;
/// Messages in flight node-wide (own broadcasts waiting for their order,
/// others' messages held for repair and delivery).
const SLOTS: usize = 32;
/// 128-byte payload blocks: 8 KiB for messages in flight.
const BLOCKS: usize = 64;
/// Bytes of delivered payloads waiting for `poll_event`.
const INBOX: usize = 2048;
/// Largest datagram (UDP payload).
const MTU: usize = 512;
/// The node type of this firmware.
type DemoNode = Node<SINKS, QUEUE, SLOTS, BLOCKS, INBOX, MTU>;

/// Ethernet frame budget of the in-memory link: one datagram with its
/// Ethernet, IPv4 and UDP headers.
const ETH_MTU: usize = ETHERNET_HEADER_LEN + 20 + 8 + MTU;
/// Frames queued towards / from each stack.
const ETH_RX: usize = 8;
const ETH_TX: usize = 4;
/// Datagrams the UDP socket holds in each direction.
const SOCKET_PACKETS: usize = 8;
const SOCKET_BYTES: usize = 4 * MTU;

// ---------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------

const NODES: usize = 3;
const PORT: u16 = 7400;
/// Sensors broadcast for this long ...
const SEND_FOR: Duration = Duration::from_millis(3000);
/// ... then everybody gets this long to deliver the rest.
const SETTLE: Duration = Duration::from_millis(1500);
const PERIOD: Duration = Duration::from_millis(100);
/// A run that delivers fewer messages than this fails even if the three
/// sequences agree (e.g. nothing at all was delivered).
const MIN_DELIVERIES: u32 = 60;

const IDS: [NodeId; NODES] = [NodeId(1), NodeId(2), NodeId(3)];

const fn ip(i: usize) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, 1 + i as u8)
}
const fn mac(i: usize) -> [u8; 6] {
    [0x02, 0x00, 0x00, 0x00, 0x00, 1 + i as u8]
}
const fn endpoint(i: usize) -> IpEndpoint {
    IpEndpoint {
        addr: IpAddress::Ipv4(ip(i)),
        port: PORT,
    }
}
static MEMBERS: [(NodeId, IpEndpoint); NODES] = [
    (IDS[0], endpoint(0)),
    (IDS[1], endpoint(1)),
    (IDS[2], endpoint(2)),
];
/// Group datagrams go to the subnet broadcast address: one frame reaches
/// every member.
const GROUP: IpEndpoint = IpEndpoint {
    addr: IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, 255)),
    port: PORT,
};

// ---------------------------------------------------------------------------
// What each node saw, for the verdict.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Tally {
    delivered: u32,
    hash: u64,
    last_sn: u64,
    broadcasts: u32,
    refused: u32,
    others: u32,
    /// Own readings delivered, and their broadcast-to-delivery latency.
    own: u32,
    latency_sum_us: u64,
    latency_max_us: u32,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl Tally {
    const fn new() -> Self {
        Tally {
            delivered: 0,
            hash: FNV_OFFSET,
            last_sn: 0,
            broadcasts: 0,
            refused: 0,
            others: 0,
            own: 0,
            latency_sum_us: 0,
            latency_max_us: 0,
        }
    }
}

/// Set from the semihosting command line (`inject-fault`): the last node
/// leaves delivery [`FAULT_SN`] out of its tally, which the verdict must
/// catch.
static INJECT_FAULT: AtomicBool = AtomicBool::new(false);
const FAULT_SN: u64 = 10;

type Shared<T> = Mutex<CriticalSectionRawMutex, Cell<T>>;
static TALLY: [Shared<Tally>; NODES] = [const { Mutex::new(Cell::new(Tally::new())) }; NODES];
static LINK_STATS: [LinkStats; NODES] = [const { LinkStats::new() }; NODES];
static SWITCH_STATS: SwitchStats = SwitchStats::new();

fn update(i: usize, f: impl FnOnce(&mut Tally)) {
    TALLY[i].lock(|c| {
        let mut t = c.get();
        f(&mut t);
        c.set(t);
    });
}

// ---------------------------------------------------------------------------
// The application: a sensor reading.
// ---------------------------------------------------------------------------

/// `node u8 | reserved u8 | seq u16 | centi-degrees i32 | sent at µs u32`,
/// little endian (the timestamp gives the sender its own latency).
const READING_LEN: usize = 12;

fn reading(i: usize, seq: u16, sent_at_us: u32) -> [u8; READING_LEN] {
    // 21.50 °C, a per-node offset, a slow triangle wave and a little noise.
    let wave = i32::from(seq % 40) - 20;
    let wave = if wave < 0 { -wave } else { wave };
    let noise = (u32::from(seq).wrapping_mul(2_654_435_761) >> 28) as i32 - 8;
    let centi = 2150 + 35 * i as i32 + 3 * wave + noise;
    let mut r = [0u8; READING_LEN];
    r[0] = IDS[i].0 as u8;
    r[2..4].copy_from_slice(&seq.to_le_bytes());
    r[4..8].copy_from_slice(&centi.to_le_bytes());
    r[8..12].copy_from_slice(&sent_at_us.to_le_bytes());
    r
}

fn on_event(i: usize, ev: &Event<'_>) {
    match *ev {
        Event::Delivered {
            sn,
            sender,
            payload,
        } => {
            if i == NODES - 1 && sn == FAULT_SN && INJECT_FAULT.load(Ordering::Relaxed) {
                // The verdict's own check (`qemu-run.sh <elf> inject-fault`):
                // this node "misses" one delivery, so the run must fail.
                defmt::warn!(
                    "node {=u16}: fault injected, delivery {=u64} not counted",
                    IDS[i].0,
                    sn
                );
                return;
            }
            update(i, |t| {
                t.delivered += 1;
                t.last_sn = sn;
                t.hash = fnv(
                    fnv(fnv(t.hash, &sn.to_le_bytes()), &sender.0.to_le_bytes()),
                    payload,
                );
            });
            if payload.len() == READING_LEN {
                let seq = u16::from_le_bytes([payload[2], payload[3]]);
                let centi = i32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
                if sender == IDS[i] {
                    let sent =
                        u32::from_le_bytes([payload[8], payload[9], payload[10], payload[11]]);
                    let latency = (adapter::now().as_micros() as u32).wrapping_sub(sent);
                    update(i, |t| {
                        t.own += 1;
                        t.latency_sum_us += u64::from(latency);
                        t.latency_max_us = t.latency_max_us.max(latency);
                    });
                }
                defmt::info!(
                    "node {=u16} delivered sn {=u64} from node {=u16}: reading #{=u16} {=i32}.{=i32:02} C",
                    IDS[i].0,
                    sn,
                    sender.0,
                    seq,
                    centi / 100,
                    (centi % 100).abs()
                );
            } else {
                defmt::warn!(
                    "node {=u16} delivered sn {=u64} from node {=u16}: {=usize} unexpected bytes",
                    IDS[i].0,
                    sn,
                    sender.0,
                    payload.len()
                );
            }
        }
        ref other => {
            update(i, |t| t.others += 1);
            defmt::info!("node {=u16}: {}", IDS[i].0, other);
        }
    }
}

// ---------------------------------------------------------------------------
// Tasks.
// ---------------------------------------------------------------------------

#[embassy_executor::task(pool_size = 3)]
async fn net_task(mut runner: embassy_net::Runner<'static, ch::Device<'static, ETH_MTU>>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn switch_task(ports: [ch::Runner<'static, ETH_MTU>; NODES]) -> ! {
    link::switch(ports, [mac(0), mac(1), mac(2)], &SWITCH_STATS).await
}

#[embassy_executor::task(pool_size = 3)]
async fn node_task(i: usize, stack: Stack<'static>, cell: &'static NodeCell<DemoNode>) -> ! {
    stack.wait_config_up().await;
    let mut rx_meta = [PacketMetadata::EMPTY; SOCKET_PACKETS];
    let mut rx_buf = [0u8; SOCKET_BYTES];
    let mut tx_meta = [PacketMetadata::EMPTY; SOCKET_PACKETS];
    let mut tx_buf = [0u8; SOCKET_BYTES];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
    if socket.bind(PORT).is_err() {
        defmt::error!("node {=u16}: cannot bind UDP port {=u16}", IDS[i].0, PORT);
        logger::exit_failure();
    }
    let routes = Routes {
        members: &MEMBERS,
        group: Some(GROUP),
        me: IDS[i],
    };
    let mut buf = [0u8; MTU];
    adapter::run(cell, &socket, &routes, &mut buf, &LINK_STATS[i], |ev| {
        on_event(i, ev)
    })
    .await
}

#[embassy_executor::task(pool_size = 3)]
async fn sensor_task(i: usize, cell: &'static NodeCell<DemoNode>) {
    let start = embassy_time::Instant::now();
    let mut ticker = Ticker::every(PERIOD);
    let mut seq: u16 = 0;
    while start.elapsed() < SEND_FOR {
        ticker.next().await;
        let r = reading(i, seq, adapter::now().as_micros() as u32);
        match cell.with(|n| n.broadcast(adapter::now(), &r)) {
            Ok(id) => {
                update(i, |t| t.broadcasts += 1);
                defmt::debug!("node {=u16} broadcast #{=u16} as {}", IDS[i].0, seq, id);
            }
            Err(e) => {
                update(i, |t| t.refused += 1);
                defmt::warn!(
                    "node {=u16} broadcast #{=u16} refused: {}",
                    IDS[i].0,
                    seq,
                    e
                );
            }
        }
        seq = seq.wrapping_add(1);
    }
}

#[embassy_executor::task]
async fn supervisor(cells: [&'static NodeCell<DemoNode>; NODES]) {
    Timer::after(SEND_FOR + SETTLE).await;
    let tallies: [Tally; NODES] = core::array::from_fn(|i| TALLY[i].lock(Cell::get));
    let sent: u32 = tallies.iter().map(|t| t.broadcasts).sum();
    for (i, t) in tallies.iter().enumerate() {
        let s = &LINK_STATS[i];
        defmt::info!(
            "node {=u16}: delivered {=u32} (last sn {=u64}, hash {=u64:016x}); broadcast {=u32}, refused {=u32}, own latency mean {=u64} us max {=u32} us; other events {=u32}; datagrams in {=u32} out {=u32}, rejected {=u32}; driver loop turns {=u32}",
            IDS[i].0,
            t.delivered,
            t.last_sn,
            t.hash,
            t.broadcasts,
            t.refused,
            t.latency_sum_us / u64::from(t.own.max(1)),
            t.latency_max_us,
            t.others,
            s.received.load(Ordering::Relaxed),
            s.sent.load(Ordering::Relaxed),
            s.rejected.load(Ordering::Relaxed),
            s.turns.load(Ordering::Relaxed)
        );
        defmt::info!(
            "node {=u16}: {}",
            IDS[i].0,
            cells[i].peek(|n| n.tob_status())
        );
    }
    defmt::info!(
        "link: {=u32} frames, {=u32} copies delivered, {=u32} dropped",
        SWITCH_STATS.frames.load(Ordering::Relaxed),
        SWITCH_STATS.delivered.load(Ordering::Relaxed),
        SWITCH_STATS.dropped.load(Ordering::Relaxed)
    );
    let busy = executor::busy_us();
    let elapsed = embassy_time::Instant::now().as_micros() as u32;
    defmt::info!(
        "CPU: busy {=u32} ms of {=u32} ms ({=u32}.{=u32}%): three nodes, three IP stacks and the link on one core",
        busy / 1000,
        elapsed / 1000,
        busy / (elapsed / 100).max(1),
        busy / (elapsed / 1000).max(1) % 10
    );
    memory::report();
    let first = tallies[0];
    let agree = tallies.iter().all(|t| {
        t.delivered == first.delivered && t.hash == first.hash && t.last_sn == first.last_sn
    });
    let complete = first.delivered == sent;
    let enough = first.delivered >= MIN_DELIVERIES;
    if agree && complete && enough {
        defmt::info!(
            "VERDICT PASS: {=usize} nodes delivered the same {=u32} messages in the same order (hash {=u64:016x})",
            NODES,
            first.delivered,
            first.hash
        );
        debug::exit(EXIT_SUCCESS);
    } else {
        defmt::error!(
            "VERDICT FAIL: sequences agree: {=bool}; every broadcast ({=u32}) delivered: {=bool}; at least {=u32} deliveries: {=bool}",
            agree,
            sent,
            complete,
            MIN_DELIVERIES,
            enough
        );
        logger::exit_failure();
    }
}

// ---------------------------------------------------------------------------
// Bring-up.
// ---------------------------------------------------------------------------

static EXECUTOR: StaticCell<raw::Executor> = StaticCell::new();
static NODE_CELLS: [StaticCell<NodeCell<DemoNode>>; NODES] = [const { StaticCell::new() }; NODES];
static CHANNELS: [StaticCell<ch::State<ETH_MTU, ETH_RX, ETH_TX>>; NODES] =
    [const { StaticCell::new() }; NODES];
static RESOURCES: [StaticCell<StackResources<1>>; NODES] = [const { StaticCell::new() }; NODES];

fn node_config<'a>(i: usize, members: &'a [NodeId]) -> Config<'a> {
    let mut c = Config::new(IDS[i], members);
    c.mtu = MTU;
    c.max_message = 1024;
    // The demo's nodes never restart; real firmware keeps a counter in
    // flash or a backup register and increments it at every boot.
    c.incarnation = 1;
    // Real firmware seeds from a hardware RNG or a unique device id.
    c.seed = 0x7068_6173_6563_6173 ^ u64::from(IDS[i].0);
    // Messages in flight at a node come from every member: with 8 members
    // and a window of 4 each, the 32 slots are enough.
    c.tob_window = 4;
    c.tob_rto = CoreDuration::from_millis(50);
    c.heartbeat = Some(CoreDuration::from_millis(100));
    c.fd_timeout = Some(CoreDuration::from_millis(1000));
    c
}

#[cortex_m_rt::entry]
fn main() -> ! {
    memory::paint_stack();
    let p = cortex_m::Peripherals::take().unwrap_or_else(|| logger::exit_failure());
    time_driver::init(p.SYST);
    INJECT_FAULT.store(logger::command_line_has(b"inject-fault"), Ordering::Relaxed);
    defmt::info!(
        "phasecast embedded demo: {=usize} nodes, node capacity {=usize} members, {=usize} messages in flight, MTU {=usize}; node size {=usize} bytes",
        NODES,
        MAX_MEMBERS,
        SLOTS,
        MTU,
        core::mem::size_of::<DemoNode>()
    );

    let executor: &'static raw::Executor =
        EXECUTOR.init_with(|| raw::Executor::new(core::ptr::null_mut()));
    bring_up(executor.spawner());
    memory::end_of_boot();
    executor::run(executor)
}

/// Builds the nodes, the network stacks and the link, and spawns every task.
/// Kept out of line so its temporaries (a node is built by value) leave the
/// stack before the executor starts.
#[inline(never)]
fn bring_up(spawner: Spawner) {
    let now = adapter::now();
    let cells: [&'static NodeCell<DemoNode>; NODES] = core::array::from_fn(|i| {
        let cell = NODE_CELLS[i].init_with(|| match DemoNode::new(&node_config(i, &IDS), now) {
            Ok(node) => NodeCell::new(node),
            Err(e) => {
                defmt::error!("node {=u16}: {}", IDS[i].0, e);
                logger::exit_failure()
            }
        });
        &*cell
    });
    let ports: [ch::Runner<'static, ETH_MTU>; NODES] = core::array::from_fn(|i| {
        let state = CHANNELS[i].init(ch::State::new());
        let (port, device) = ch::new(state, ch::driver::HardwareAddress::Ethernet(mac(i)));
        let config = embassy_net::Config::ipv4_static(embassy_net::StaticConfigV4 {
            address: Ipv4Cidr::new(ip(i), 24),
            gateway: None,
            dns_servers: Default::default(),
        });
        let (stack, runner) = embassy_net::new(
            device,
            config,
            RESOURCES[i].init(StackResources::new()),
            0x5eed_0000 + i as u64,
        );
        spawner.spawn(unwrap(net_task(runner)));
        spawner.spawn(unwrap(node_task(i, stack, cells[i])));
        spawner.spawn(unwrap(sensor_task(i, cells[i])));
        port
    });
    spawner.spawn(unwrap(switch_task(ports)));
    spawner.spawn(unwrap(supervisor(cells)));
}

fn unwrap<T>(r: Result<T, embassy_executor::SpawnError>) -> T {
    r.unwrap_or_else(|_| {
        defmt::error!("task pool exhausted");
        logger::exit_failure()
    })
}

/// Entry points of the core that the demo does not call (unordered `send`,
/// the sink control calls, `suspect`, bandwidth allocation), linked in
/// anyway so that the size report counts the core with every feature, not
/// only what this application happens to use.
#[used]
static LINK_EVERY_FEATURE: EntryPoints = EntryPoints([
    DemoNode::send as *const (),
    DemoNode::on_acked as *const (),
    DemoNode::hold as *const (),
    DemoNode::suspect as *const (),
    DemoNode::increase_bw as *const (),
    DemoNode::decrease_bw as *const (),
    DemoNode::last_heard as *const (),
]);

#[allow(dead_code)] // read by the linker only
struct EntryPoints([*const (); 7]);
// SAFETY: the addresses are never dereferenced or called.
unsafe impl Sync for EntryPoints {}

/// RAM figures measured at run time: statics from the linker's symbols, the
/// stack's high-water marks by painting (once for bring-up, where the nodes
/// are built, and once for the run itself).
mod memory {
    use core::ptr::{addr_of, addr_of_mut};
    use core::sync::atomic::{AtomicUsize, Ordering};

    const PAINT: u32 = 0x5afe_c0de;
    /// Painted below the stack pointer; a peak that reaches the end of the
    /// window is reported as a lower bound.
    const WINDOW: usize = 512 * 1024;

    static BOOT_PEAK: AtomicUsize = AtomicUsize::new(0);

    extern "C" {
        static mut __sheap: u32;
        static _stack_start: u32;
        static __sdata: u32;
    }

    fn sp() -> usize {
        cortex_m::register::msp::read() as usize
    }

    fn top() -> usize {
        // Only the addresses of the linker symbols are taken.
        addr_of!(_stack_start) as usize
    }

    fn bottom() -> usize {
        let heap = addr_of_mut!(__sheap) as usize;
        heap.max(top().saturating_sub(WINDOW))
    }

    /// Fills the free stack below the current frame with a pattern.
    pub fn paint_stack() {
        let end = sp() - 256;
        let mut a = bottom();
        while a < end {
            // SAFETY: between the end of the statics and below the live
            // stack frame: memory nobody uses yet.
            unsafe { core::ptr::write_volatile(a as *mut u32, PAINT) };
            a += 4;
        }
    }

    /// The deepest the stack has been since it was painted.
    fn peak() -> usize {
        let mut a = bottom();
        // SAFETY: reads of painted (or since used) RAM below the stack.
        while a < top() && unsafe { core::ptr::read_volatile(a as *const u32) } == PAINT {
            a += 4;
        }
        top() - a
    }

    /// Bring-up is over: keep its peak and paint again for the run.
    pub fn end_of_boot() {
        BOOT_PEAK.store(peak(), Ordering::Relaxed);
        paint_stack();
    }

    /// Logs static RAM and the stack peaks.
    pub fn report() {
        let data = addr_of!(__sdata) as usize;
        let heap = addr_of_mut!(__sheap) as usize;
        let boot = BOOT_PEAK.load(Ordering::Relaxed);
        let run = peak();
        defmt::info!(
            "RAM: {=usize} bytes of statics (.data + .bss); stack peak {=usize} bytes at bring-up (nodes built by value), {=usize} bytes while running{=str}",
            heap - data,
            boot,
            run,
            if boot.max(run) >= top() - bottom() { " (lower bounds: the painted window was exhausted)" } else { "" }
        );
    }
}
