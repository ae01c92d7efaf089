//! Encode/decode cost of the wire format per integrity schema: one frame
//! with a single 32-byte `Data` record, and a full 1400-byte frame packed with
//! 32-byte `Data` records.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use phasecast_core::seq::Seq;
use phasecast_core::wire::{decode, FrameWriter, Header, Integrity, Record, RecordRepr};

const BUDGET: usize = 1400;
const PAYLOAD: [u8; 32] = [0xA5; 32];

fn header(integrity: Integrity) -> Header {
    Header {
        integrity,
        cluster: 1,
        sender: 2,
        view: 3,
        seq: Seq(4),
    }
}

/// Build and seal a frame with up to `max_records` 32-byte Data records;
/// returns the datagram length.
fn encode(s: Integrity, buf: &mut [u8; BUDGET], max_records: u32) -> usize {
    let mut w = match FrameWriter::new(buf, &header(s), s.max_frame_len(BUDGET)) {
        Ok(w) => w,
        Err(e) => panic!("writer: {e}"),
    };
    for m in 0..max_records {
        let r = RecordRepr::Data {
            group: 7,
            msg: Seq(m),
            payload: &PAYLOAD,
        };
        if w.push(&r).is_err() {
            break;
        }
    }
    let len = w.finish();
    s.seal(buf, len).expect("seal")
}

/// Decode and touch every record; returns the payload bytes seen.
fn decode_all(s: Integrity, datagram: &[u8], scratch: &mut [u8]) -> usize {
    let f = decode(s, datagram, scratch).expect("decode");
    f.records()
        .map(|r| match r {
            Record::Known(RecordRepr::Data { payload, .. }) => payload.len(),
            _ => 0,
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    for (label, max_records) in [("one_data_32B", 1u32), ("full_1400B", u32::MAX)] {
        let mut g = c.benchmark_group(format!("wire/{label}"));
        for s in Integrity::ALL {
            let mut buf = [0u8; BUDGET];
            let n = encode(s, &mut buf, max_records);
            g.throughput(Throughput::Bytes(n as u64));
            g.bench_with_input(BenchmarkId::new("encode", format!("{s:?}")), &s, |b, &s| {
                let mut out = [0u8; BUDGET];
                b.iter(|| encode(black_box(s), &mut out, black_box(max_records)))
            });
            let datagram = &buf[..n];
            g.bench_with_input(BenchmarkId::new("decode", format!("{s:?}")), &s, |b, &s| {
                let mut scratch = [0u8; BUDGET];
                b.iter(|| decode_all(black_box(s), black_box(datagram), &mut scratch))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
