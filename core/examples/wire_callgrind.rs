//! Encode then decode N full frames, for instruction counts under
//! `valgrind --tool=callgrind`:
//!
//! ```text
//! cargo build --release --example wire_callgrind
//! valgrind --tool=callgrind target/release/examples/wire_callgrind 1000 crc32c
//! ```
//!
//! Arguments: N (default 1000) and the schema, `crc32c` (default), `hd6` or
//! `hd8`. Each frame is a 1400-byte datagram of 32-byte `Data` records.

use phasecast_core::seq::Seq;
use phasecast_core::wire::{decode, FrameWriter, Header, Integrity, Record, RecordRepr};

const BUDGET: usize = 1400;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let s = match args.next().as_deref() {
        None | Some("crc32c") => Integrity::Crc32c,
        Some("hd6") => Integrity::ChunkHd6,
        Some("hd8") => Integrity::ChunkHd8,
        Some(other) => {
            eprintln!("unknown schema {other:?}: use crc32c, hd6 or hd8");
            std::process::exit(2);
        }
    };
    let payload = [0x5Au8; 32];
    let mut buf = [0u8; BUDGET];
    let mut scratch = [0u8; BUDGET];
    let mut seen = 0u64;
    for i in 0..n {
        let header = Header {
            integrity: s,
            cluster: 1,
            sender: 2,
            view: 3,
            seq: Seq(i),
        };
        let mut w = FrameWriter::new(&mut buf, &header, s.max_frame_len(BUDGET)).expect("writer");
        let mut m = 0u32;
        while w
            .push(&RecordRepr::Data {
                group: 7,
                msg: Seq(m),
                payload: &payload,
            })
            .is_ok()
        {
            m += 1;
        }
        let len = w.finish();
        let sealed = s.seal(&mut buf, len).expect("seal");
        let frame = decode(s, &buf[..sealed], &mut scratch).expect("decode");
        for r in frame.records() {
            if let Record::Known(RecordRepr::Data { msg, .. }) = r {
                seen = seen.wrapping_add(u64::from(msg.0));
            }
        }
    }
    // Printing the sum keeps the work observable so it is not optimised out.
    println!("{n} frames ({s:?}), checksum {seen}");
}
