/*
 * api_misuse: every misuse of the C ABI returns a status code — no crash,
 * no sanitizer report (this file is built plainly and with
 * -fsanitize=address,undefined). Also: the whole API on a 64 KiB thread
 * stack, and two threads hammering one node (refused, never raced).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const uint16_t MEMBERS[3] = {10, 20, 30};

static phasecast_config config(uint16_t id) {
    phasecast_config c;
    EXPECT(phasecast_config_init(&c, id, MEMBERS, 3), PHASECAST_OK);
    return c;
}

static phasecast_node *create(uint16_t id) {
    phasecast_config c = config(id);
    phasecast_node *n = NULL;
    EXPECT(phasecast_node_create(&c, 1000, &n), PHASECAST_OK);
    CHECK(n != NULL);
    return n;
}

static void library_wide(void) {
    CHECK(phasecast_abi_version() == PHASECAST_ABI_VERSION);
    CHECK(phasecast_version_string() != NULL && phasecast_version_string()[0] != 0);
    for (uint32_t s = 0; s < 64; s++)
        CHECK(phasecast_status_str(s) != NULL);
    CHECK(strcmp(phasecast_status_str(0xdeadbeef), "unknown status") == 0);
    CHECK(strcmp(phasecast_status_str(PHASECAST_ERR_NULL_ARGUMENT), "null argument") == 0);
    for (uint32_t r = 0; r < 100; r++)
        CHECK(phasecast_drop_reason_str(r) != NULL);
    phasecast_limits l;
    EXPECT(phasecast_limits_get(NULL), PHASECAST_ERR_NULL_ARGUMENT);
    CHECK(strstr(phasecast_last_error_detail(), "out") != NULL);
    EXPECT(phasecast_limits_get(&l), PHASECAST_OK);
    CHECK(l.node_size == phasecast_node_size() && l.node_align == phasecast_node_align());
    CHECK(l.max_members >= 3 && l.max_mtu == PHASECAST_MAX_MTU && l.min_mtu >= 500 && l.min_mtu <= 576);
    EXPECT(phasecast_config_init(NULL, 1, MEMBERS, 3), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_send_options_init(NULL), PHASECAST_ERR_NULL_ARGUMENT);
}

static void null_everything(void) {
    uint8_t buf[2048];
    phasecast_transmit tx;
    phasecast_event ev;
    phasecast_counters c;
    phasecast_view v;
    phasecast_tob_status ts;
    phasecast_destination d = {PHASECAST_DEST_PEER, 20};
    uint64_t u;
    size_t z;
    /* A NULL node, everywhere. */
    EXPECT(phasecast_node_handle_datagram(NULL, 1, 20, buf, 10, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_handle_timeout(NULL, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_next_timeout(NULL, &u), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_poll_transmit(NULL, 1, buf, sizeof buf, &tx), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_poll_event(NULL, &ev), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_broadcast(NULL, 1, buf, 1, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_send(NULL, 1, d, buf, 1, NULL, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_suspect(NULL, 1, 20), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_increase_bw(NULL, 1, 5, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_decrease_bw(NULL, 1, 5, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_current_bw(NULL, &u), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_counters(NULL, &c), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_view(NULL, &v), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_tob_status(NULL, &ts), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_mtu(NULL, &z), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_fini(NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_destroy(NULL), PHASECAST_ERR_NULL_ARGUMENT);
    phasecast_node *none = NULL;
    EXPECT(phasecast_node_destroy(&none), PHASECAST_ERR_NULL_ARGUMENT);

    /* NULL out-parameters and buffers on a live node. */
    phasecast_node *n = create(10);
    EXPECT(phasecast_node_next_timeout(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_poll_transmit(n, 1, buf, sizeof buf, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_poll_transmit(n, 1, NULL, sizeof buf, &tx), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_poll_event(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_handle_datagram(n, 1, 20, NULL, 10, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_broadcast(n, 1, NULL, 5, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_send(n, 1, d, NULL, 5, NULL, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_current_bw(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_counters(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_view(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_tob_status(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_mtu(n, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    /* Empty payloads may be NULL. */
    EXPECT(phasecast_node_broadcast(n, 1, NULL, 0, NULL), PHASECAST_OK);
    EXPECT(phasecast_node_send(n, 1, d, NULL, 0, NULL, NULL), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&n), PHASECAST_OK);
}

static void bad_configs(void) {
    phasecast_node *n = NULL;
    phasecast_config c = config(10);
    uint16_t dup[3] = {10, 20, 10};
    uint16_t many[70];
    for (int i = 0; i < 70; i++)
        many[i] = (uint16_t)i;
    EXPECT(phasecast_node_create(NULL, 0, &n), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_create(&c, 0, NULL), PHASECAST_ERR_NULL_ARGUMENT);
#define BAD(field_change, want)                                                          \
    do {                                                                                 \
        c = config(10);                                                                  \
        field_change;                                                                    \
        n = NULL;                                                                        \
        EXPECT(phasecast_node_create(&c, 0, &n), want);                                  \
        CHECK(n == NULL);                                                                \
        CHECK(phasecast_last_error_detail()[0] != 0);                                    \
    } while (0)
    BAD(c.members = NULL, PHASECAST_ERR_NULL_ARGUMENT);
    BAD(c.member_count = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD((c.members = many, c.member_count = 70), PHASECAST_ERR_INVALID_ARGUMENT);
    BAD((c.members = many, c.member_count = 64, c.id = 1), PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.members = dup, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.id = 99, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.mtu = 100, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.mtu = 70000, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.mtu = (size_t)-1, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.integrity = 3, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.integrity = 0xffffffffu, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.scheduling = 77, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.view_policy = 5, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.join = 2, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.tob_window = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.tob_window = PHASECAST_MAX_TOB_WINDOW + 1, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.tob_rto_us = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.reassembly_timeout_us = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.max_message = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.max_message = (size_t)1 << 30, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD((c.rate_bytes_per_s = 0, c.rate_burst = 10), PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_partition_size = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_ranges = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_ranges = 1000, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_token_period_us = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_replication = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_replication = 6, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_window = 0, PHASECAST_ERR_INVALID_ARGUMENT);
    BAD(c.qsm_suspect_after = 0, PHASECAST_ERR_INVALID_ARGUMENT);
#undef BAD
    /* The defaults of the core: batching on, QSM as the paper ran it. */
    c = config(10);
    CHECK(c.tob_batch == 4096 && c.qsm_partition_size == 25 && c.qsm_ranges == 4);
    CHECK(c.qsm_token_period_us == 1000000 && c.qsm_replication == 5 && c.qsm_window >= 1);
    CHECK(c.qsm_suspect_after >= 1 && c.qsm_suspect_min_us >= c.qsm_token_period_us);
    /* Every other integrity schema and policy is accepted. */
    c = config(10);
    c.integrity = PHASECAST_INTEGRITY_CHUNK_HD8;
    c.scheduling = PHASECAST_SCHED_DRR;
    c.sched_weights[0] = c.sched_weights[1] = c.sched_weights[2] = c.sched_weights[3] = 1500;
    c.view_policy = PHASECAST_VIEW_TRUST_DETECTOR;
    c.join = 1;
    c.rate_bytes_per_s = 1000000;
    c.rate_burst = 10000;
    c.window_bytes = 100000;
    c.tob_batch = 0;
    c.qsm_token_period_us = 20000;
    c.qsm_partition_size = 3;
    EXPECT(phasecast_node_create(&c, 0, &n), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&n), PHASECAST_OK);
    CHECK(n == NULL);
}

static void bad_calls(void) {
    phasecast_node *n = create(10);
    uint8_t buf[2048];
    phasecast_transmit tx;
    phasecast_event ev;
    size_t mtu = 0;
    EXPECT(phasecast_node_mtu(n, &mtu), PHASECAST_OK);
    CHECK(mtu == 1400);
    /* Short buffers: the size needed comes back. */
    memset(&tx, 0, sizeof tx);
    EXPECT(phasecast_node_poll_transmit(n, 1, buf, 100, &tx), PHASECAST_ERR_BUFFER_TOO_SMALL);
    CHECK(tx.len == mtu);
    memset(&tx, 0, sizeof tx);
    EXPECT(phasecast_node_poll_transmit(n, 1, NULL, 0, &tx), PHASECAST_ERR_BUFFER_TOO_SMALL);
    CHECK(tx.len == mtu);
    /* Nothing to poll yet. */
    EXPECT(phasecast_node_poll_transmit(n, 1, buf, sizeof buf, &tx), PHASECAST_WOULD_BLOCK);
    EXPECT(phasecast_node_poll_event(n, &ev), PHASECAST_WOULD_BLOCK);
    /* Garbage datagrams are rejected and counted, not fatal. */
    uint32_t reason = 999;
    memset(buf, 0xa5, sizeof buf);
    EXPECT(phasecast_node_handle_datagram(n, 1, 20, buf, 300, &reason), PHASECAST_DATAGRAM_REJECTED);
    CHECK(reason == 0 && strcmp(phasecast_drop_reason_str(reason), "malformed") == 0);
    EXPECT(phasecast_node_handle_datagram(n, 1, 20, buf, 0, NULL), PHASECAST_DATAGRAM_REJECTED);
    EXPECT(phasecast_node_handle_datagram(n, 1, 999, buf, 1, NULL), PHASECAST_DATAGRAM_REJECTED);
    phasecast_counters c;
    EXPECT(phasecast_node_counters(n, &c), PHASECAST_OK);
    CHECK(c.dropped[0] == 3);
    /* Oversized payloads. */
    phasecast_config cfg = config(10);
    size_t big = cfg.max_message + 1;
    uint8_t *p = calloc(1, big);
    CHECK(p != NULL);
    EXPECT(phasecast_node_broadcast(n, 1, p, big, NULL), PHASECAST_ERR_OVERSIZED);
    phasecast_destination to20 = {PHASECAST_DEST_PEER, 20};
    EXPECT(phasecast_node_send(n, 1, to20, p, big, NULL, NULL), PHASECAST_ERR_OVERSIZED);
    free(p);
    /* Unknown ids, bad destinations and options. */
    phasecast_destination d = {PHASECAST_DEST_PEER, 99};
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, NULL), PHASECAST_ERR_NOT_MEMBER);
    d.id = 10; /* this node */
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, NULL), PHASECAST_ERR_NOT_MEMBER);
    d.id = 70000;
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    d.kind = 9;
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    d.kind = PHASECAST_DEST_GROUP;
    d.id = 1234;
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, NULL), PHASECAST_ERR_UNKNOWN_GROUP);
    phasecast_send_options o;
    EXPECT(phasecast_send_options_init(&o), PHASECAST_OK);
    CHECK(o.priority_class == PHASECAST_CLASS_DATA && o.droppable == 0);
    o.priority_class = 4;
    EXPECT(phasecast_node_send(n, 1, to20, buf, 4, &o, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    o.priority_class = PHASECAST_CLASS_EXPRESS;
    o.droppable = 7;
    EXPECT(phasecast_node_send(n, 1, to20, buf, 4, &o, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    o.droppable = 1;
    uint32_t msg = 0xffffffff;
    EXPECT(phasecast_node_send(n, 1, to20, buf, 4, &o, &msg), PHASECAST_OK);
    CHECK(msg == 0);
    d.id = PHASECAST_GROUP_ALL;
    EXPECT(phasecast_node_send(n, 1, d, buf, 4, NULL, &msg), PHASECAST_OK);
    CHECK(msg == 1);
    EXPECT(phasecast_node_suspect(n, 1, 99), PHASECAST_ERR_NOT_MEMBER);
    EXPECT(phasecast_node_suspect(n, 1, 10), PHASECAST_ERR_NOT_MEMBER);
    /* Bandwidth calls without allocation. */
    uint64_t bw;
    EXPECT(phasecast_node_current_bw(n, &bw), PHASECAST_ERR_NOT_ENABLED);
    EXPECT(phasecast_node_increase_bw(n, 1, 100, NULL), PHASECAST_ERR_NOT_ENABLED);
    EXPECT(phasecast_node_decrease_bw(n, 1, 100, NULL), PHASECAST_ERR_NOT_ENABLED);
    /* The window: FULL is backpressure, and it changes nothing. */
    phasecast_msg_id id;
    int ok = 0;
    phasecast_status s;
    while ((s = phasecast_node_broadcast(n, 1, buf, 8, &id)) == PHASECAST_OK)
        ok++;
    CHECK(s == PHASECAST_FULL);
    /* Batching (default): small broadcasts made while the previous one
     * waits unsent share ordering units, so more than the window's count of
     * messages is accepted before the byte budget answers FULL. */
    CHECK(ok > (int)cfg.tob_window);
    phasecast_tob_status ts;
    EXPECT(phasecast_node_tob_status(n, &ts), PHASECAST_OK);
    CHECK(ts.outstanding >= 1 && ts.outstanding <= cfg.tob_window);
    CHECK(id.sender == 10 && id.counter == (uint32_t)ok - 1);
    EXPECT(phasecast_node_broadcast(n, 1, buf, 8, &id), PHASECAST_FULL);
    CHECK(id.counter == (uint32_t)ok - 1); /* FULL changed nothing */
    {
        /* Without batching the window counts messages. */
        phasecast_config nb = config(10);
        phasecast_node *m = NULL;
        nb.tob_batch = 0;
        EXPECT(phasecast_node_create(&nb, 1, &m), PHASECAST_OK);
        int k = 0;
        while ((s = phasecast_node_broadcast(m, 1, buf, 8, &id)) == PHASECAST_OK)
            k++;
        CHECK(s == PHASECAST_FULL && k == (int)nb.tob_window);
        EXPECT(phasecast_node_tob_status(m, &ts), PHASECAST_OK);
        CHECK(ts.outstanding == nb.tob_window);
        EXPECT(phasecast_node_destroy(&m), PHASECAST_OK);
    }
    phasecast_view v;
    EXPECT(phasecast_node_view(n, &v), PHASECAST_OK);
    CHECK(v.member_count == 3 && v.members[0] == 10 && v.members[2] == 30);
    /* A timestamp at the end of time is harmless. */
    EXPECT(phasecast_node_handle_timeout(n, UINT64_MAX), PHASECAST_OK);
    uint64_t t;
    EXPECT(phasecast_node_next_timeout(n, &t), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&n), PHASECAST_OK);

    /* With allocation on. */
    cfg.link_capacity = 1000000;
    EXPECT(phasecast_node_create(&cfg, 0, &n), PHASECAST_OK);
    EXPECT(phasecast_node_current_bw(n, &bw), PHASECAST_OK);
    EXPECT(phasecast_node_increase_bw(n, 1, 0, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    EXPECT(phasecast_node_increase_bw(n, 1, 1000, NULL), PHASECAST_OK);
    EXPECT(phasecast_node_increase_bw(n, 1, 1000, NULL), PHASECAST_ERR_BUSY);
    EXPECT(phasecast_node_decrease_bw(n, 1, 10, NULL), PHASECAST_ERR_BUSY);
    EXPECT(phasecast_node_destroy(&n), PHASECAST_OK);
}

static void lifecycle(void) {
    size_t size = phasecast_node_size(), align = phasecast_node_align();
    CHECK(size > 1000000 && align >= 8);
    uint8_t *raw = malloc(size + 2 * align);
    CHECK(raw != NULL);
    memset(raw, 0, size + 2 * align);
    void *mem = raw + (align - (uintptr_t)raw % align) % align;
    phasecast_config c = config(20);
    phasecast_node *n = NULL, *again = NULL;
    size_t needed = 0;
    EXPECT(phasecast_node_init(NULL, size, &c, 0, &needed, &n), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_init(mem, size, NULL, 0, &needed, &n), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_init(mem, size, &c, 0, &needed, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_init(mem, 64, &c, 0, &needed, &n), PHASECAST_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == size);
    EXPECT(phasecast_node_init(mem, 64, &c, 0, NULL, &n), PHASECAST_ERR_BUFFER_TOO_SMALL);
    EXPECT(phasecast_node_init((uint8_t *)mem + 1, size, &c, 0, NULL, &n),
           PHASECAST_ERR_INVALID_ARGUMENT);
    /* Zeroed memory is no node; a misaligned pointer neither. */
    size_t mtu;
    EXPECT(phasecast_node_mtu((phasecast_node *)mem, &mtu), PHASECAST_ERR_BAD_HANDLE);
    EXPECT(phasecast_node_mtu((phasecast_node *)((uint8_t *)mem + 1), &mtu), PHASECAST_ERR_BAD_HANDLE);
    /* A bad configuration leaves the memory free for another try. */
    c.mtu = 1;
    EXPECT(phasecast_node_init(mem, size, &c, 0, NULL, &n), PHASECAST_ERR_INVALID_ARGUMENT);
    c.mtu = 1400;
    EXPECT(phasecast_node_init(mem, size, &c, 0, NULL, &n), PHASECAST_OK);
    CHECK((void *)n == mem);
    EXPECT(phasecast_node_mtu(n, &mtu), PHASECAST_OK);
    /* Double init, the wrong release function. */
    EXPECT(phasecast_node_init(mem, size, &c, 0, NULL, &again), PHASECAST_ERR_ALREADY_INITIALIZED);
    CHECK(again == NULL);
    phasecast_node *copy = n;
    EXPECT(phasecast_node_destroy(&copy), PHASECAST_ERR_BAD_HANDLE);
    CHECK(copy == n);
    EXPECT(phasecast_node_fini(n), PHASECAST_OK);
    /* Use after fini, double fini. */
    EXPECT(phasecast_node_mtu(n, &mtu), PHASECAST_ERR_BAD_HANDLE);
    EXPECT(phasecast_node_broadcast(n, 1, raw, 1, NULL), PHASECAST_ERR_BAD_HANDLE);
    EXPECT(phasecast_node_fini(n), PHASECAST_ERR_BAD_HANDLE);
    /* The memory can hold a node again. */
    EXPECT(phasecast_node_init(mem, size, &c, 0, NULL, &n), PHASECAST_OK);
    EXPECT(phasecast_node_fini(n), PHASECAST_OK);
    free(raw);

    /* Heap nodes: fini refused, destroy clears the caller's pointer. */
    phasecast_node *h = create(30);
    EXPECT(phasecast_node_fini(h), PHASECAST_ERR_BAD_HANDLE);
    EXPECT(phasecast_node_destroy(&h), PHASECAST_OK);
    CHECK(h == NULL);
    EXPECT(phasecast_node_destroy(&h), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_mtu(h, &mtu), PHASECAST_ERR_NULL_ARGUMENT);
}

/* Two threads on one node: every call returns OK or CONCURRENT_USE. */
static phasecast_node *shared;
static pthread_barrier_t start;
static void *hammer(void *arg) {
    long *refused = arg;
    phasecast_counters c;
    uint8_t buf[1400];
    phasecast_transmit tx;
    pthread_barrier_wait(&start);
    for (int i = 0; i < 200000; i++) {
        phasecast_status s = (i % 2) ? phasecast_node_counters(shared, &c)
                                     : phasecast_node_poll_transmit(shared, 1, buf, sizeof buf, &tx);
        if (s == PHASECAST_ERR_CONCURRENT_USE)
            ++*refused;
        else if (s != PHASECAST_OK && s != PHASECAST_WOULD_BLOCK) {
            fprintf(stderr, "hammer: unexpected status %u\n", (unsigned)s);
            exit(1);
        }
    }
    return NULL;
}

static void concurrency(void) {
    shared = create(10);
    CHECK(pthread_barrier_init(&start, NULL, 2) == 0);
    long r1 = 0, r2 = 0;
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, hammer, &r1) == 0);
    CHECK(pthread_create(&b, NULL, hammer, &r2) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&start);
    /* How many overlap depends on the scheduler (none on one core). */
    printf("concurrency: %ld of 400000 calls overlapped and were refused with "
           "PHASECAST_ERR_CONCURRENT_USE\n",
           r1 + r2);
    EXPECT(phasecast_node_destroy(&shared), PHASECAST_OK);
}

/* The whole life of two nodes on a 64 KiB stack. */
static void *small_stack_body(void *arg) {
    (void)arg;
    phasecast_node *a = create(10), *b = create(20);
    uint8_t buf[1400];
    phasecast_transmit tx;
    phasecast_event ev;
    EXPECT(phasecast_node_broadcast(a, 2, (const uint8_t *)"hello", 5, NULL), PHASECAST_OK);
    int delivered = 0;
    for (int round = 0; round < 20; round++) {
        phasecast_node *from[2] = {a, b}, *to[2] = {b, a};
        uint16_t ids[2] = {10, 20};
        for (int k = 0; k < 2; k++)
            while (phasecast_node_poll_transmit(from[k], 2, buf, sizeof buf, &tx) == PHASECAST_OK)
                if (tx.destination.kind == PHASECAST_DEST_GROUP || tx.destination.id != 30)
                    phasecast_node_handle_datagram(to[k], 2, ids[k], buf, tx.len, NULL);
        while (phasecast_node_poll_event(a, &ev) == PHASECAST_OK)
            delivered += ev.kind == PHASECAST_EVENT_DELIVERED;
        EXPECT(phasecast_node_handle_timeout(a, 2 + (uint64_t)round * 30000), PHASECAST_OK);
        EXPECT(phasecast_node_handle_timeout(b, 2 + (uint64_t)round * 30000), PHASECAST_OK);
    }
    (void)delivered; /* member 30 never answers: no uniform delivery, by design */
    EXPECT(phasecast_node_destroy(&a), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&b), PHASECAST_OK);
    return NULL;
}

static void small_stack(void) {
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    CHECK(pthread_attr_setstacksize(&at, 64 * 1024) == 0);
    CHECK(pthread_create(&t, &at, small_stack_body, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    pthread_attr_destroy(&at);
}

/* Omaha pledge buffers: misuse is a status; a message held behind another
 * application's pledge leaves with that application's pledged send. */
static void pledges(void) {
    phasecast_node *n = create(10);
    uint8_t buf[2048];
    const uint16_t to20[] = {20}, to20_30[] = {20, 30}, unknown[] = {99}, self[] = {10};
    phasecast_send_options o;
    EXPECT(phasecast_send_options_init(&o), PHASECAST_OK);
    CHECK(o.proba_buf == 0.0f && o.critical == 1 && o.app == 0);
    /* Misuse. */
    EXPECT(phasecast_node_begin_pledge(NULL, 1, 2, to20, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_begin_pledge(n, 1, 2, NULL, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_begin_pledge(n, 1, 2, unknown, 1), PHASECAST_ERR_NOT_MEMBER);
    EXPECT(phasecast_node_begin_pledge(n, 1, 2, self, 1), PHASECAST_ERR_NOT_MEMBER);
    EXPECT(phasecast_node_send_to(n, 1, NULL, 2, buf, 4, NULL, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_pledged_send(n, 1, to20, 1, buf, 4, NULL, NULL), PHASECAST_ERR_NULL_ARGUMENT);
    o.proba_buf = 1.5f;
    EXPECT(phasecast_node_send_to(n, 1, to20, 1, buf, 4, &o, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    o.proba_buf = 1.0f;
    o.critical = 2;
    EXPECT(phasecast_node_send_to(n, 1, to20, 1, buf, 4, &o, NULL), PHASECAST_ERR_INVALID_ARGUMENT);
    o.critical = 1;
    phasecast_counters c;
    EXPECT(phasecast_node_counters(n, &c), PHASECAST_OK);
    CHECK(c.messages_accepted == 0);
    /* App 2 pledges a send to 20; app 1's message to 20 waits for it. */
    EXPECT(phasecast_node_begin_pledge(n, 2, 2, to20_30, 2), PHASECAST_OK);
    o.app = 1;
    o.timeout_us = 50000;
    uint32_t m1 = 0, m2 = 0;
    EXPECT(phasecast_node_send_to(n, 3, to20, 1, (const uint8_t *)"ack", 3, &o, &m1), PHASECAST_OK);
    phasecast_transmit tx;
    EXPECT(phasecast_node_poll_transmit(n, 3, buf, sizeof buf, &tx), PHASECAST_WOULD_BLOCK);
    o.app = 2;
    o.proba_buf = 0.0f;
    EXPECT(phasecast_node_pledged_send(n, 10, to20_30, 2, (const uint8_t *)"accept", 6, &o, &m2),
           PHASECAST_OK);
    CHECK(m2 == m1 + 1);
    int datagrams = 0;
    while (phasecast_node_poll_transmit(n, 10, buf, sizeof buf, &tx) == PHASECAST_OK) {
        CHECK(tx.destination.kind == PHASECAST_DEST_PEER);
        datagrams++;
    }
    CHECK(datagrams == 2); /* one to 20 carrying both messages, one to 30 */
    uint32_t had = 9;
    EXPECT(phasecast_node_end_pledge(n, 11, 2, &had), PHASECAST_OK);
    CHECK(had == 0); /* the pledged send ended it */
    EXPECT(phasecast_node_counters(n, &c), PHASECAST_OK);
    CHECK(c.messages_buffered == 1 && c.messages_accepted == 3);
    /* The aggregation policy is checked at creation. */
    phasecast_config cfg = config(10);
    CHECK(cfg.aggregation == PHASECAST_AGGREGATION_OMAHA);
    cfg.aggregation = 42;
    phasecast_node *bad = NULL;
    EXPECT(phasecast_node_create(&cfg, 1, &bad), PHASECAST_ERR_INVALID_ARGUMENT);
    CHECK(bad == NULL);
    EXPECT(phasecast_node_destroy(&n), PHASECAST_OK);
}

/* QSM group multicast: a view from the daemon's configuration service, a
 * multicast leaving once for its region, delivered in order at a member. */
static void groups(void) {
    phasecast_node *a = create(10), *b = create(20);
    const uint16_t members[] = {10, 20};
    phasecast_region region = {1000, members, 2};
    phasecast_group group = {7, 0x1};
    uint8_t buf[2048];
    /* Misuse. */
    EXPECT(phasecast_node_install_groups(NULL, 1, 1, &region, 1, &group, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_install_groups(a, 1, 1, NULL, 1, &group, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_install_groups(a, 1, 1, &region, 1, NULL, 1), PHASECAST_ERR_NULL_ARGUMENT);
    EXPECT(phasecast_node_install_groups(a, 1, 1, &region, 9, &group, 1), PHASECAST_ERR_INVALID_ARGUMENT);
    EXPECT(phasecast_node_multicast(a, 1, 7, buf, 4, NULL), PHASECAST_ERR_UNKNOWN_GROUP);
    /* The view, on both nodes. */
    EXPECT(phasecast_node_install_groups(a, 2, 1, &region, 1, &group, 1), PHASECAST_OK);
    EXPECT(phasecast_node_install_groups(b, 2, 1, &region, 1, &group, 1), PHASECAST_OK);
    /* An epoch that does not grow is refused and changes nothing. */
    EXPECT(phasecast_node_install_groups(a, 3, 1, &region, 1, &group, 1), PHASECAST_ERR_INVALID_ARGUMENT);
    EXPECT(phasecast_node_multicast(a, 3, 8, buf, 4, NULL), PHASECAST_ERR_UNKNOWN_GROUP);
    uint32_t seq = 0;
    EXPECT(phasecast_node_multicast(a, 3, 7, (const uint8_t *)"hi", 2, &seq), PHASECAST_OK);
    CHECK(seq == 1);
    EXPECT(phasecast_node_multicast(a, 3, 7, (const uint8_t *)"there", 5, &seq), PHASECAST_OK);
    CHECK(seq == 2);
    phasecast_transmit tx;
    int to_region = 0;
    while (phasecast_node_poll_transmit(a, 4, buf, sizeof buf, &tx) == PHASECAST_OK) {
        if (tx.destination.kind == PHASECAST_DEST_GROUP && tx.destination.id == 1000) {
            to_region++;
            EXPECT(phasecast_node_handle_datagram(b, 5, 10, buf, tx.len, NULL), PHASECAST_OK);
        }
    }
    CHECK(to_region >= 1);
    phasecast_event ev;
    uint32_t got = 0;
    while (phasecast_node_poll_event(b, &ev) == PHASECAST_OK) {
        if (ev.kind != PHASECAST_EVENT_GROUP_DELIVERED)
            continue;
        got++;
        CHECK(ev.data.group_delivered.group == 7 && ev.data.group_delivered.sender == 10);
        CHECK(ev.data.group_delivered.seq == got);
        CHECK(ev.data.group_delivered.payload_len == (got == 1 ? 2u : 5u));
    }
    CHECK(got == 2);
    EXPECT(phasecast_node_destroy(&a), PHASECAST_OK);
    EXPECT(phasecast_node_destroy(&b), PHASECAST_OK);
}

int main(void) {
    library_wide();
    null_everything();
    bad_configs();
    bad_calls();
    pledges();
    groups();
    lifecycle();
    concurrency();
    small_stack();
    printf("api_misuse: %d checks passed\n", checks_passed);
    return 0;
}
