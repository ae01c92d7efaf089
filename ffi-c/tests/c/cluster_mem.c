/*
 * cluster_mem: three nodes driven in memory by a C harness, through the C
 * ABI only, on virtual time, over a network that loses, duplicates and
 * reorders datagrams (seeded, so a failure replays). Every node broadcasts
 * messages of varied sizes (some fragmented); the test checks that
 *   phase 1: all three deliver every message, the same sequence, intact;
 *   phase 2: after node 2 crashes, the survivors change view, keep
 *            delivering, agree with each other, and what node 2 delivered
 *            before it crashed is a prefix of their sequence.
 * It runs on a 256 KiB thread stack and builds node 1 in caller memory
 * (phasecast_node_init), so both creation paths are exercised.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define N 3
#define MTU 1400
#define MAX_FLIGHT 20000
#define MAX_DELIVER 20000

typedef struct dgram {
    uint64_t at;
    int from, to;
    size_t len;
    uint8_t *bytes;
} dgram;

static dgram flight[MAX_FLIGHT];
static int nflight;
static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static phasecast_node *node[N];
static int alive[N] = {1, 1, 1};
static uint64_t seqs[N][MAX_DELIVER]; /* sender << 32 | counter, in delivery order */
static int ndel[N];
static int views[N];
static uint32_t sent_count[N];
static uint64_t now;
static uint64_t lost, duplicated;

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Message k of sender s: 8 bytes of header, then a pattern; some over one datagram. */
static size_t msg_len(int s, uint32_t k) { return 8 + (size_t)((s * 7919u + k * 104729u) % (k % 17 == 0 ? 3000 : 300)); }
static void fill(uint8_t *p, int s, uint32_t k) {
    size_t len = msg_len(s, k);
    put_u32(p, (uint32_t)s);
    put_u32(p + 4, k);
    for (size_t i = 8; i < len; i++)
        p[i] = (uint8_t)(s * 31 + k * 7 + i);
}

static void enqueue(int from, int to, const uint8_t *b, size_t len) {
    if (!alive[to])
        return;
    if (rnd() % 100 < 5) { /* 5 % loss */
        lost++;
        return;
    }
    int copies = rnd() % 100 < 2 ? 2 : 1; /* 2 % duplicated */
    duplicated += (uint64_t)(copies - 1);
    for (int c = 0; c < copies; c++) {
        CHECK(nflight < MAX_FLIGHT);
        dgram *d = &flight[nflight++];
        d->at = now + 50 + rnd() % 800; /* 50..850 µs: reordering */
        d->from = from;
        d->to = to;
        d->len = len;
        d->bytes = malloc(len);
        CHECK(d->bytes != NULL);
        memcpy(d->bytes, b, len);
    }
}

static void transmit_all(void) {
    uint8_t buf[MTU];
    for (int i = 0; i < N; i++) {
        if (!alive[i])
            continue;
        phasecast_transmit tx;
        phasecast_status s;
        while ((s = phasecast_node_poll_transmit(node[i], now, buf, sizeof buf, &tx)) == PHASECAST_OK) {
            if (tx.destination.kind == PHASECAST_DEST_PEER) {
                CHECK(tx.destination.id < N && tx.destination.id != (uint32_t)i);
                enqueue(i, (int)tx.destination.id, buf, tx.len);
            } else {
                CHECK(tx.destination.id == PHASECAST_GROUP_ALL);
                for (int j = 0; j < N; j++)
                    if (j != i)
                        enqueue(i, j, buf, tx.len);
            }
        }
        EXPECT(s, PHASECAST_WOULD_BLOCK);
    }
}

static void events_all(void) {
    for (int i = 0; i < N; i++) {
        if (!alive[i])
            continue;
        phasecast_event ev;
        while (phasecast_node_poll_event(node[i], &ev) == PHASECAST_OK) {
            if (ev.kind == PHASECAST_EVENT_VIEW_CHANGED) {
                views[i]++;
                continue;
            }
            if (ev.kind != PHASECAST_EVENT_DELIVERED)
                continue;
            const uint8_t *p = ev.data.delivered.payload;
            CHECK(ev.data.delivered.payload_len >= 8);
            uint32_t s = get_u32(p), k = get_u32(p + 4);
            CHECK(s < N && s == ev.data.delivered.sender);
            CHECK(ev.data.delivered.payload_len == msg_len((int)s, k));
            uint8_t want[4096];
            fill(want, (int)s, k);
            CHECK(memcmp(p, want, ev.data.delivered.payload_len) == 0);
            CHECK(ndel[i] < MAX_DELIVER);
            seqs[i][ndel[i]++] = (uint64_t)s << 32 | k;
        }
    }
}

/* Advances to the next datagram arrival or alarm (at most `limit`). */
static void step(uint64_t limit) {
    uint64_t next = limit;
    for (int d = 0; d < nflight; d++)
        if (flight[d].at < next)
            next = flight[d].at;
    for (int i = 0; i < N; i++) {
        uint64_t t;
        if (!alive[i])
            continue;
        EXPECT(phasecast_node_next_timeout(node[i], &t), PHASECAST_OK);
        if (t < next)
            next = t;
    }
    if (next > now)
        now = next;
    for (int d = 0; d < nflight;) {
        if (flight[d].at <= now) {
            dgram g = flight[d];
            flight[d] = flight[--nflight];
            if (alive[g.to]) {
                phasecast_status s = phasecast_node_handle_datagram(node[g.to], now, (uint16_t)g.from,
                                                                    g.bytes, g.len, NULL);
                CHECK(s == PHASECAST_OK || s == PHASECAST_DATAGRAM_REJECTED);
            }
            free(g.bytes);
        } else {
            d++;
        }
    }
    for (int i = 0; i < N; i++) {
        uint64_t t;
        if (!alive[i])
            continue;
        EXPECT(phasecast_node_next_timeout(node[i], &t), PHASECAST_OK);
        if (t <= now)
            EXPECT(phasecast_node_handle_timeout(node[i], now), PHASECAST_OK);
    }
}

static void broadcast_some(uint32_t upto[N]) {
    uint8_t p[4096];
    for (int i = 0; i < N; i++) {
        while (alive[i] && sent_count[i] < upto[i]) {
            fill(p, i, sent_count[i]);
            phasecast_status s = phasecast_node_broadcast(node[i], now, p, msg_len(i, sent_count[i]), NULL);
            if (s == PHASECAST_FULL)
                break;
            EXPECT(s, PHASECAST_OK);
            sent_count[i]++;
        }
    }
}

static int count_from(int i, int sender) {
    int c = 0;
    for (int k = 0; k < ndel[i]; k++)
        c += (int)(seqs[i][k] >> 32) == sender;
    return c;
}

static void *body(void *arg) {
    (void)arg;
    static const uint16_t members[N] = {0, 1, 2};
    static uint8_t *mem;
    size_t size = phasecast_node_size(), align = phasecast_node_align();
    uint8_t *raw = malloc(size + align);
    CHECK(raw != NULL);
    mem = raw + (align - (uintptr_t)raw % align) % align;
    for (int i = 0; i < N; i++) {
        phasecast_config c;
        EXPECT(phasecast_config_init(&c, (uint16_t)i, members, N), PHASECAST_OK);
        c.mtu = MTU;
        c.heartbeat_us = 10000;
        c.fd_timeout_us = 150000;
        c.tob_rto_us = 20000;
        c.seed = 99 + (uint64_t)i;
        if (i == 1)
            EXPECT(phasecast_node_init(mem, size, &c, 0, NULL, &node[i]), PHASECAST_OK);
        else
            EXPECT(phasecast_node_create(&c, 0, &node[i]), PHASECAST_OK);
    }

    /* Phase 1: 600 messages each, everyone alive. */
    const uint32_t M1 = 600;
    uint32_t upto[N] = {M1, M1, M1};
    while (!(ndel[0] == N * (int)M1 && ndel[1] == N * (int)M1 && ndel[2] == N * (int)M1)) {
        CHECK(now < 60000000); /* 60 virtual seconds */
        broadcast_some(upto);
        transmit_all();
        step(now + 1000);
        events_all();
    }
    for (int i = 1; i < N; i++)
        CHECK(memcmp(seqs[0], seqs[i], sizeof(uint64_t) * (size_t)ndel[0]) == 0);
    printf("phase 1: 3 nodes delivered the same %d messages at t=%.3f s (%llu datagrams lost, %llu duplicated)\n",
           ndel[0], (double)now / 1e6, (unsigned long long)lost, (unsigned long long)duplicated);

    /* Phase 2: node 2 crashes while everyone broadcasts 400 more. */
    const uint32_t M2 = M1 + 400;
    for (int i = 0; i < N; i++)
        upto[i] = M2;
    uint64_t crash_at = now + 30000;
    while (count_from(0, 0) < (int)M2 || count_from(0, 1) < (int)M2 || count_from(1, 0) < (int)M2 ||
           count_from(1, 1) < (int)M2 || views[0] == 0 || views[1] == 0) {
        CHECK(now < 120000000);
        if (alive[2] && now >= crash_at)
            alive[2] = 0; /* stops dead: no more datagrams in or out */
        broadcast_some(upto);
        transmit_all();
        step(now + 1000);
        events_all();
    }
    /* Let the last deliveries settle. */
    for (uint64_t until = now + 500000; now < until;) {
        transmit_all();
        step(until);
        events_all();
    }
    CHECK(ndel[0] == ndel[1]);
    CHECK(memcmp(seqs[0], seqs[1], sizeof(uint64_t) * (size_t)ndel[0]) == 0);
    CHECK(ndel[2] <= ndel[0]);
    CHECK(memcmp(seqs[0], seqs[2], sizeof(uint64_t) * (size_t)ndel[2]) == 0);
    printf("phase 2: node 2 crashed after delivering %d; survivors changed view (%d, %d views) and "
           "delivered the same %d messages, of which node 2's sequence is a prefix\n",
           ndel[2], views[0], views[1], ndel[0]);

    phasecast_counters c;
    EXPECT(phasecast_node_counters(node[0], &c), PHASECAST_OK);
    CHECK(c.view_changes >= 1 && c.retransmissions > 0);
    EXPECT(phasecast_node_destroy(&node[0]), PHASECAST_OK);
    EXPECT(phasecast_node_fini(node[1]), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&node[2]), PHASECAST_OK);
    for (int d = 0; d < nflight; d++)
        free(flight[d].bytes);
    free(raw);
    return NULL;
}

int main(void) {
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    CHECK(pthread_attr_setstacksize(&at, 256 * 1024) == 0);
    CHECK(pthread_create(&t, &at, body, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("cluster_mem: %d checks passed\n", checks_passed);
    return 0;
}
