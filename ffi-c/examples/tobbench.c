/*
 * tobbench: raw total order broadcast over the phasecast C ABI, one process
 * per member, UDP on loopback.
 *
 *   tobbench --id I --nodes N --messages M --size S [--rate R]
 *            [--base-port P] [--mtu B] [--window W] [--timeout-s T]
 *            [--sched rr|other]
 *
 * Defaults: 65,507-byte datagrams (loopback carries them unfragmented), a
 * window of min(64, 40000 / S) undelivered broadcasts per member, member i
 * on 127.0.0.1:(P + i) with P = 47100, and --sched rr: SCHED_RR at priority
 * 1 with locked memory when permitted, as corosync runs by default (the
 * competitor this benchmark is compared with); --sched other keeps the
 * default policy.
 *
 * Every member broadcasts M messages of S bytes (sender id, sequence, send
 * timestamp, padding) — flat out, or R messages per second with --rate —
 * and delivers all N*M. It prints one line:
 *
 *   RESULT id=… complete=0|1 delivered=… size=… elapsed_s=… msgs_per_s=…
 *          MB_per_s=… p50_ms=… p99_ms=… order_hash=… sched=rr|other
 *
 * elapsed runs from the start barrier to the last delivery; msgs_per_s is
 * delivered messages (all senders) per second at this member; latency is
 * broadcast to delivery of this member's own messages, skipping the first
 * 20 % as warm-up; order_hash is FNV-1a over (sender, sequence) in delivery
 * order: equal on every member when the order is total. Details (datagrams,
 * syscalls, aggregation) go to stderr.
 *
 * When a member has delivered all N*M it broadcasts a DONE marker; it exits
 * once it delivered every member's DONE (everyone is complete), after a
 * short linger that lets the last acknowledgements out.
 */
#define _GNU_SOURCE
#include "pc_host.h"

#include <inttypes.h>

#define HDR 14
#define DONE_SEQ 0xffffffffu

static uint64_t get_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}
static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: tobbench --id I --nodes N --messages M --size S [--rate R]\n"
                    "                [--base-port P] [--mtu B] [--window W] [--timeout-s T]\n"
                    "                [--sched rr|other]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long id = -1, nodes = 0, messages = 0, size = 0, rate = 0, base_port = 47100, mtu = 65507,
         window = 0, timeout_s = 120;
    const char *sched = "rr";
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *k = argv[i], *v = argv[++i];
        long x = strtol(v, NULL, 10);
        if (!strcmp(k, "--id"))
            id = x;
        else if (!strcmp(k, "--nodes"))
            nodes = x;
        else if (!strcmp(k, "--messages"))
            messages = x;
        else if (!strcmp(k, "--size"))
            size = x;
        else if (!strcmp(k, "--rate"))
            rate = x;
        else if (!strcmp(k, "--base-port"))
            base_port = x;
        else if (!strcmp(k, "--mtu"))
            mtu = x;
        else if (!strcmp(k, "--window"))
            window = x;
        else if (!strcmp(k, "--timeout-s"))
            timeout_s = x;
        else if (!strcmp(k, "--sched") && (!strcmp(v, "rr") || !strcmp(v, "other")))
            sched = v;
        else
            usage();
    }
    if (nodes < 2 || nodes > 63 || id < 0 || id >= nodes || messages < 1 || size < HDR ||
        size > 60000 || rate < 0)
        usage();

    /* Default window: about 40 kB of undelivered broadcasts per member, at
     * most the core's default of 64 messages. Larger windows of large
     * messages overrun the receivers' buffer budget in the core today
     * (drops counted as "no buffer space", repaired after the RTO). */
    if (window == 0)
        window = 40000 / size < 1 ? 1 : (40000 / size > 64 ? 64 : 40000 / size);
    uint16_t members[64];
    for (int i = 0; i < nodes; i++)
        members[i] = (uint16_t)i;
    phasecast_config cfg;
    phasecast_config_init(&cfg, (uint16_t)id, members, (size_t)nodes);
    cfg.mtu = (size_t)mtu;
    cfg.tob_window = (size_t)window;
    cfg.tob_rto_us = 10000;
    cfg.seed = 0x70b ^ (uint64_t)id;
    cfg.max_message = 65536;

    char who[32];
    snprintf(who, sizeof who, "tobbench %ld", id);
    sched = pc_sched(sched, who);

    pc_host h;
    pc_host_open(&h, &cfg, (int)nodes, "127.0.0.1", (int)base_port);
    if (pc_host_barrier(&h, 30000) != 0) {
        fprintf(stderr, "tobbench %ld: peers did not start\n", id);
        return 1;
    }

    const uint64_t total = (uint64_t)nodes * (uint64_t)messages;
    uint64_t *lat = calloc((size_t)messages, sizeof *lat);
    uint8_t *msg = malloc((size_t)size);
    if (!lat || !msg)
        return 2;
    memset(msg, 0xab, (size_t)size);
    put_be(msg, (uint64_t)id, 2);

    uint64_t t0 = pc_now_us(), t_done = 0, linger_until = 0;
    uint64_t interval = rate ? 1000000u / (uint64_t)rate : 0, next_send = t0;
    uint64_t sent = 0, delivered = 0, own = 0, dones = 0, hash = 1469598103934665603ull;
    int done_sent = 0, complete = 0;
    uint64_t deadline = t0 + (uint64_t)timeout_s * 1000000u;

    for (;;) {
        uint64_t now = pc_now_us();
        int progress = 0;
        if (now > deadline)
            break;
        if (linger_until && now >= linger_until)
            break;
        /* Application: broadcast what the window (and the rate) allow. */
        while (sent < (uint64_t)messages && (!rate || next_send <= now)) {
            put_be(msg + 2, sent, 4);
            put_be(msg + 6, now, 8);
            phasecast_status s = phasecast_node_broadcast(h.node, now, msg, (size_t)size, NULL);
            if (s == PHASECAST_FULL)
                break;
            if (s != PHASECAST_OK)
                pc_die("phasecast_node_broadcast", s);
            sent++;
            progress = 1;
            if (rate)
                next_send += interval;
        }
        if (complete && !done_sent) {
            uint8_t d[HDR];
            memset(d, 0, sizeof d);
            put_be(d, (uint64_t)id, 2);
            put_be(d + 2, DONE_SEQ, 4);
            if (phasecast_node_broadcast(h.node, now, d, sizeof d, NULL) == PHASECAST_OK)
                done_sent = 1;
        }
        pc_host_transmit(&h, now);
        if (pc_host_receive(&h, now, 8) > 0)
            progress = 1;
        now = pc_now_us();
        uint64_t next = pc_host_timers(&h, now);
        /* Events. */
        phasecast_event ev;
        while (phasecast_node_poll_event(h.node, &ev) == PHASECAST_OK) {
            if (ev.kind != PHASECAST_EVENT_DELIVERED) {
                if (ev.kind == PHASECAST_EVENT_VIEW_CHANGED)
                    fprintf(stderr, "tobbench %ld: view %" PRIu32 " with %" PRIu32 " members\n",
                            id, ev.data.view.view_id, ev.data.view.member_count);
                continue;
            }
            progress = 1;
            const uint8_t *p = ev.data.delivered.payload;
            if (ev.data.delivered.payload_len < HDR)
                continue;
            uint64_t sender = get_be(p, 2), seq = get_be(p + 2, 4);
            if (seq == DONE_SEQ) {
                if (++dones == (uint64_t)nodes && !linger_until)
                    linger_until = pc_now_us() + 200000;
                continue;
            }
            for (int b = 0; b < 6; b++) {
                hash ^= p[b];
                hash *= 1099511628211ull;
            }
            delivered++;
            if (sender == (uint64_t)id && seq < (uint64_t)messages) {
                lat[seq] = pc_now_us() - get_be(p + 6, 8);
                own++;
            }
            if (delivered == total) {
                complete = 1;
                t_done = pc_now_us();
            }
        }
        pc_host_transmit(&h, pc_now_us());
        if (!progress) {
            now = pc_now_us();
            uint64_t wake = next;
            if (rate && sent < (uint64_t)messages && next_send < wake)
                wake = next_send;
            if (linger_until && linger_until < wake)
                wake = linger_until;
            struct pollfd pfd = {h.fd, POLLIN, 0};
            pc_wait(&pfd, 1, now, wake, 100000);
        }
    }

    double elapsed = (double)((complete ? t_done : pc_now_us()) - t0) / 1e6;
    double p50 = 0, p99 = 0;
    uint64_t skip = (uint64_t)messages / 5, cnt = own > skip ? own - skip : 0;
    if (cnt > 0) {
        /* Own messages are delivered in sequence order: the first `own`. */
        qsort(lat + skip, (size_t)cnt, sizeof *lat, cmp_u64);
        p50 = (double)lat[skip + cnt * 50 / 100] / 1000.0;
        p99 = (double)lat[skip + (cnt * 99 / 100 < cnt ? cnt * 99 / 100 : cnt - 1)] / 1000.0;
        fprintf(stderr, "tobbench %ld: latency ms p90 %.3f p99.9 %.3f max %.3f\n", id,
                (double)lat[skip + cnt * 90 / 100] / 1000.0,
                (double)lat[skip + cnt * 999 / 1000] / 1000.0, (double)lat[skip + cnt - 1] / 1000.0);
    }
    phasecast_counters c;
    phasecast_node_counters(h.node, &c);
    fprintf(stderr,
            "tobbench %ld: datagrams on the wire %" PRIu64 " (%" PRIu64 " bytes), frames %" PRIu64
            ", records %" PRIu64 " (%.1f per frame), sendmmsg %" PRIu64 ", recvmmsg %" PRIu64
            ", rejected %" PRIu64 ", retransmissions %" PRIu64 ", stalls %" PRIu64 "\n",
            id, h.wire_datagrams, h.wire_bytes, c.frames_sent, c.records_sent,
            c.frames_sent ? (double)c.records_sent / (double)c.frames_sent : 0.0, h.syscalls_tx,
            h.syscalls_rx, h.rejected, c.retransmissions, c.tob_stalls);
    for (int r = 0; r < PHASECAST_DROP_REASONS; r++)
        if (c.dropped[r])
            fprintf(stderr, "tobbench %ld: dropped (%s): %" PRIu64 "\n", id,
                    phasecast_drop_reason_str((uint32_t)r), c.dropped[r]);
    printf("RESULT id=%ld complete=%d delivered=%" PRIu64 " size=%ld elapsed_s=%.3f "
           "msgs_per_s=%.0f MB_per_s=%.2f p50_ms=%.3f p99_ms=%.3f order_hash=%016" PRIx64
           " sched=%s\n",
           id, complete, delivered, size, elapsed, elapsed > 0 ? (double)delivered / elapsed : 0.0,
           elapsed > 0 ? (double)delivered * (double)size / elapsed / 1e6 : 0.0, p50, p99, hash, sched);
    fflush(stdout);
    pc_host_close(&h);
    free(lat);
    free(msg);
    return complete ? 0 : 1;
}
