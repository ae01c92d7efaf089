//! Feeds: components that register the *intent* to send (QSM §4, Fig. 9–10).
//!
//! "Rather than creating a message and handing it down to the sink, a feed
//! registers the intent to send a message with the sink. [...] the creation
//! may also be postponed until the time when the sink polls the feed." In this
//! engine a sink's queues hold two kinds of entries ([`Item`]): messages the
//! application handed over (their bytes wait in the payload pool), and
//! *intents* of generating feeds, which cost no bytes and produce their
//! record from the node's state at the moment they are pulled. A feed has at
//! most one intent per sink; pulling it deregisters it ("feeds that no longer
//! have data to send are automatically deregistered") and the feed registers
//! again when it has something new to say.

/// Priority classes, highest first. This is the default scheduling policy of
/// every sink: strict priority, express > control > recovery > data.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Class {
    /// Small periodic messages with bounded latency (X-Lane's express lane).
    Express = 0,
    /// Protocol control: acknowledgements, tokens, heartbeats.
    Control = 1,
    /// Retransmissions and forwarding.
    Recovery = 2,
    /// Application data.
    Data = 3,
}

impl Class {
    /// Number of classes (= queues per sink).
    pub const COUNT: usize = 4;
    /// All classes, highest priority first.
    pub const ALL: [Class; 4] = [Class::Express, Class::Control, Class::Recovery, Class::Data];
    /// Queue index of the class.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A generating feed: something that makes its record when pulled.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Feed {
    /// The node's liveness beacon, stamped with the time it leaves.
    Heartbeat = 0,
    /// The sequencer's ORDER records for numbers not yet sent.
    TobOrder = 1,
    /// This process's cumulative ACK, with the freshest value.
    TobAck = 2,
    /// A request to the sequencer for order and data of a range.
    TobNack = 3,
    /// The sequencer's answer to a NACK (unicast).
    TobRepair = 4,
    /// RECOVER parts of a view change.
    Recover = 5,
    /// ACK_RECOVER to one member.
    AckRecover = 6,
    /// END_RECOVERY.
    EndRecovery = 7,
    /// A request for data listed in a RECOVER.
    Fetch = 8,
    /// Data asked for with `Fetch` (unicast).
    Forward = 9,
    /// A request to join the view.
    Join = 10,
    /// The ACK of a bandwidth increase (reliable unicast).
    BwAck = 11,
    /// The bandwidth-increase requester asks for missing ACKs.
    BwPoll = 12,
    /// Tells a process outside the view which view it missed (unicast).
    ViewNotice = 13,
    /// An excluded process tells a proposer it is out (unicast).
    Leave = 14,
    /// QSM: a region's new messages and re-multicasts (region sink).
    QsmData = 15,
    /// QSM: tokens and acknowledgements (unicast).
    QsmControl = 16,
    /// QSM: recovery requests and forwarded messages (unicast).
    QsmRecovery = 17,
}

impl Feed {
    /// Bit of the feed in a sink's registration mask.
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }
    /// The class the feed's records travel in.
    pub const fn class(self) -> Class {
        match self {
            Feed::TobNack | Feed::TobRepair | Feed::Fetch | Feed::Forward | Feed::QsmRecovery => {
                Class::Recovery
            }
            Feed::QsmData => Class::Data,
            _ => Class::Control,
        }
    }
}

/// An entry of a sink's queue.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Item {
    /// An application message, by its slot in the node's outgoing table.
    Message(u16),
    /// A feed's registered intent to send.
    Intent(Feed),
    /// DATA of a total-order broadcast, by its slot in the pending table.
    Broadcast(u16),
}
