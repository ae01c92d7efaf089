/*
 * latency_mem: the protocol's own latency, without an operating system.
 * Three nodes driven through the C ABI on virtual time, every datagram
 * taking exactly 30 µs, processing taking none; each node broadcasts a
 * 100-byte message every millisecond (tobbench's latency case). Broadcast
 * to delivery at the sender must be a few one-way delays (DATA, ORDER,
 * ACK: 90 µs) for every message: nothing may wait for a later message or
 * for a timer. On loopback, whatever a run adds beyond this is the host
 * and its scheduler.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdint.h>
#include <string.h>

#define N 3
#define DELAY 30
#define ROUNDS 2000
#define MAX_FLIGHT 4096

typedef struct {
    uint64_t at;
    int from, to;
    size_t len;
    uint8_t bytes[1400];
} dgram;

static dgram flight[MAX_FLIGHT];
static int nflight;
static phasecast_node *node[N];
static uint64_t now, sent_at[N][ROUNDS], lat[N * ROUNDS];
static int nlat;

static void transmit(void) {
    uint8_t buf[1400];
    phasecast_transmit tx;
    for (int i = 0; i < N; i++)
        while (phasecast_node_poll_transmit(node[i], now, buf, sizeof buf, &tx) == PHASECAST_OK)
            for (int j = 0; j < N; j++) {
                int to_j = tx.destination.kind == PHASECAST_DEST_GROUP ? j != i
                                                                       : tx.destination.id == (uint32_t)j;
                if (!to_j)
                    continue;
                CHECK(nflight < MAX_FLIGHT);
                dgram *d = &flight[nflight++];
                d->at = now + DELAY;
                d->from = i;
                d->to = j;
                d->len = tx.len;
                memcpy(d->bytes, buf, tx.len);
            }
}

static void deliver_events(void) {
    phasecast_event ev;
    for (int i = 0; i < N; i++)
        while (phasecast_node_poll_event(node[i], &ev) == PHASECAST_OK)
            if (ev.kind == PHASECAST_EVENT_DELIVERED && ev.data.delivered.sender == i) {
                const uint8_t *p = ev.data.delivered.payload;
                uint32_t k = (uint32_t)p[0] << 8 | p[1];
                lat[nlat++] = now - sent_at[i][k];
            }
}

/* Runs the network until virtual time `t`. */
static void run_until(uint64_t t) {
    for (;;) {
        transmit();
        deliver_events();
        uint64_t next = t;
        for (int d = 0; d < nflight; d++)
            if (flight[d].at < next)
                next = flight[d].at;
        for (int i = 0; i < N; i++) {
            uint64_t dl;
            EXPECT(phasecast_node_next_timeout(node[i], &dl), PHASECAST_OK);
            if (dl < next)
                next = dl;
        }
        if (next >= t && now >= t)
            return;
        now = next > now ? next : now;
        for (int d = 0; d < nflight;) {
            if (flight[d].at <= now) {
                dgram *g = &flight[d];
                EXPECT(phasecast_node_handle_datagram(node[g->to], now, (uint16_t)g->from, g->bytes,
                                                      g->len, NULL),
                       PHASECAST_OK);
                flight[d] = flight[--nflight];
            } else {
                d++;
            }
        }
        for (int i = 0; i < N; i++) {
            uint64_t dl;
            EXPECT(phasecast_node_next_timeout(node[i], &dl), PHASECAST_OK);
            if (dl <= now)
                EXPECT(phasecast_node_handle_timeout(node[i], now), PHASECAST_OK);
        }
        if (now >= t && nflight == 0)
            return;
    }
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    static const uint16_t members[N] = {0, 1, 2};
    for (int i = 0; i < N; i++) {
        phasecast_config c;
        EXPECT(phasecast_config_init(&c, (uint16_t)i, members, N), PHASECAST_OK);
        c.mtu = 1400;
        c.tob_rto_us = 10000;
        EXPECT(phasecast_node_create(&c, 0, &node[i]), PHASECAST_OK);
    }
    uint8_t msg[100];
    memset(msg, 0x5a, sizeof msg);
    for (uint32_t k = 0; k < ROUNDS; k++)
        for (int i = 0; i < N; i++) {
            run_until((uint64_t)k * 1000 + (uint64_t)i * 333);
            msg[0] = (uint8_t)(k >> 8);
            msg[1] = (uint8_t)k;
            sent_at[i][k] = now;
            EXPECT(phasecast_node_broadcast(node[i], now, msg, sizeof msg, NULL), PHASECAST_OK);
        }
    run_until(now + 100000);
    CHECK(nlat == N * ROUNDS);
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp);
    printf("latency_mem: %d messages, %d µs links: p50 %llu µs, p99 %llu µs, max %llu µs\n", nlat,
           DELAY, (unsigned long long)lat[nlat / 2], (unsigned long long)lat[nlat * 99 / 100],
           (unsigned long long)lat[nlat - 1]);
    /* At most four one-way delays, for every message. */
    CHECK(lat[nlat - 1] <= 4 * DELAY);
    for (int i = 0; i < N; i++)
        EXPECT(phasecast_node_destroy(&node[i]), PHASECAST_OK);
    printf("latency_mem: %d checks passed\n", checks_passed);
    return 0;
}
