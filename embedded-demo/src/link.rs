//! An in-memory Ethernet segment joining several embassy-net stacks.
//!
//! Each stack gets an [`embassy_net_driver_channel`] device; [`switch`] owns
//! the other ends of the channels and moves every frame a stack transmits to
//! the receive queue of the stack whose MAC address it names (or of every
//! other stack for broadcast and multicast frames), like a learning switch
//! that already knows where everyone is.
//!
//! It stands in for real hardware in tests and demos: the stacks above it
//! run ARP, IPv4 and UDP unchanged. A frame that finds its receiver's queue
//! full is dropped and counted, as a switch port would; the protocol above
//! must cope (phasecast repairs losses by NACK and retransmission).

use core::future::poll_fn;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Poll;

use embassy_net_driver_channel::driver::LinkState;
use embassy_net_driver_channel::Runner;

/// Length of an Ethernet header (destination, source, EtherType).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// What the segment carried.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Frames taken from a transmitter.
    pub frames: AtomicU32,
    /// Copies handed to receivers.
    pub delivered: AtomicU32,
    /// Copies dropped because the receiver's queue was full.
    pub dropped: AtomicU32,
    /// Frames too short to carry an Ethernet header.
    pub runts: AtomicU32,
}

impl SwitchStats {
    /// All zero.
    pub const fn new() -> Self {
        SwitchStats {
            frames: AtomicU32::new(0),
            delivered: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            runts: AtomicU32::new(0),
        }
    }
}

fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Does a frame to `dst` go to the port with address `mac`?
fn wants(dst: &[u8], mac: &[u8; 6]) -> bool {
    // The group bit (I/G) covers broadcast and multicast.
    dst == mac || dst.first().is_some_and(|b| b & 1 == 1)
}

/// Runs the segment forever: sets every port's link up, then forwards
/// frames. `macs[i]` is the hardware address of the stack behind
/// `ports[i]`.
pub async fn switch<const MTU: usize, const N: usize>(
    ports: [Runner<'_, MTU>; N],
    macs: [[u8; 6]; N],
    stats: &SwitchStats,
) -> ! {
    let mut ports = ports.map(|p| {
        let (state, rx, tx) = p.split();
        state.set_link_state(LinkState::Up);
        (rx, tx)
    });
    loop {
        let mut moved = false;
        for i in 0..N {
            let (head, tail) = ports.split_at_mut(i);
            let Some(((_, tx), tail)) = tail.split_first_mut() else {
                continue;
            };
            while let Some(frame) = tx.try_tx_buf() {
                moved = true;
                bump(&stats.frames);
                let Some(dst) = frame.get(..6) else {
                    bump(&stats.runts);
                    tx.tx_done();
                    continue;
                };
                let others = head
                    .iter_mut()
                    .zip(&macs[..i])
                    .chain(tail.iter_mut().zip(macs.get(i + 1..).unwrap_or(&[])));
                for ((rx, _), mac) in others {
                    if !wants(dst, mac) {
                        continue;
                    }
                    match rx.try_rx_buf() {
                        Some(buf) if buf.len() >= frame.len() => {
                            buf[..frame.len()].copy_from_slice(frame);
                            rx.rx_done(frame.len());
                            bump(&stats.delivered);
                        }
                        _ => bump(&stats.dropped),
                    }
                }
                tx.tx_done();
            }
        }
        if !moved {
            // Sleep until any stack has a frame to send.
            poll_fn(|cx| {
                let mut ready = false;
                for (_, tx) in ports.iter_mut() {
                    ready |= tx.poll_tx_buf(cx).is_ready();
                }
                if ready {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
    }
}
