//! Cost of one enqueue + one dequeue on a half-full BASEL queue of 256
//! packets, for FIFO and for SRPT with push-out (Table 1's optimal row).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use phasecast_core::queue::{Congestion, PacketMeta, PacketOrder, Queue, QueueSpec};
use phasecast_core::time::Instant;

const N: usize = 256;

fn meta(i: u64) -> PacketMeta {
    PacketMeta {
        // Pseudo-random work so SRPT's heaps actually reorder.
        work: (i.wrapping_mul(0x9E37_79B9) >> 7) as u32 % 1000,
        droppable: true,
        ..PacketMeta::new(Instant::from_micros(i), 1200)
    }
}

fn bench_spec<P: PacketOrder, A: PacketOrder>(
    c: &mut Criterion,
    name: &str,
    spec: QueueSpec<P, A>,
) {
    let mut q = Queue::<u64, N, P, A>::new(spec);
    let mut i = 0u64;
    while q.len() < N / 2 {
        q.enqueue(meta(i), i);
        i += 1;
    }
    c.bench_function(name, |b| {
        b.iter(|| {
            let a = q.enqueue(black_box(meta(i)), i);
            i += 1;
            black_box(a);
            black_box(q.dequeue_hol())
        })
    });
}

fn queue_ops(c: &mut Criterion) {
    bench_spec(
        c,
        "fifo_enqueue_dequeue_n256",
        QueueSpec::fifo(Congestion::packets(N)),
    );
    bench_spec(
        c,
        "srpt_enqueue_dequeue_n256",
        QueueSpec::srpt(Congestion::packets(N)),
    );
}

criterion_group!(benches, queue_ops);
criterion_main!(benches);
