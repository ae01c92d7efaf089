/*
 * pc_host.h: the UDP side of a phasecast daemon on one host, shared by the
 * examples (kvnode, tobbench). Plain POSIX plus Linux's recvmmsg/sendmmsg.
 *
 * Member i of a cluster of n listens on 127.0.0.1:(base_port + i) (or on
 * the address given with --peers). A datagram from a known peer address is
 * handed to the node as coming from that peer's id; a group datagram is
 * fanned out as one unicast copy per other member, all in one sendmmsg.
 *
 * Start-up barrier: a member sends small HELO datagrams (which are not
 * phasecast frames: those start with "PC") to its peers until it has heard
 * from all of them, and answers every HELO it receives, so every member
 * knows the others' sockets are bound before the application starts.
 *
 * Header-only (static functions) so each example is one translation unit.
 */
#ifndef PC_HOST_H
#define PC_HOST_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "phasecast.h"

#ifndef PC_BATCH
#define PC_BATCH 64 /* datagrams per recvmmsg, buffers per sendmmsg batch */
#endif

static inline uint64_t pc_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void pc_die(const char *what, phasecast_status s) {
    fprintf(stderr, "%s: %s (%s)\n", what, phasecast_status_str(s), phasecast_last_error_detail());
    exit(2);
}

/* Scheduling policy of a member process. "rr" asks for SCHED_RR at
 * priority 1 and locks its memory, which is what corosync does by default
 * (corosync.conf `system { sched_rr: yes }`, plus mlockall): a woken member
 * then runs at once instead of waiting for the time slice of whatever batch
 * job holds the CPU, which is where a loaded machine's p99 comes from.
 * Priority 1 is the lowest real-time priority: it outranks every normal
 * process and no kernel thread. "other" keeps the default policy. When the
 * process may not raise its priority (no CAP_SYS_NICE, RLIMIT_RTPRIO 0) it
 * warns and keeps the default. Returns the policy in force: "rr" or "other". */
static inline const char *pc_sched(const char *policy, const char *who) {
    if (strcmp(policy, "rr") != 0)
        return "other";
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    sp.sched_priority = 1;
    if (sched_setscheduler(0, SCHED_RR, &sp) != 0) {
        fprintf(stderr, "%s: SCHED_RR not permitted (%s); default scheduling\n", who,
                strerror(errno));
        return "other";
    }
    /* Page faults on a path woken for one message cost more than the
     * message; a failure here only costs latency. */
    (void)mlockall(MCL_CURRENT | MCL_FUTURE);
    return "rr";
}

typedef struct pc_host {
    phasecast_node *node;
    int fd;
    int id, n;
    size_t mtu;
    struct sockaddr_in peers[PHASECAST_MAX_MEMBERS];
    int heard[PHASECAST_MAX_MEMBERS];
    int heard_count;
    int dead[PHASECAST_MAX_MEMBERS]; /* suspected/excluded: no more copies */
    /* transmit batch */
    uint8_t *tx_bufs; /* PC_BATCH buffers of mtu bytes */
    int tx_used;      /* buffers holding datagrams of the batch */
    struct mmsghdr tx_msgs[PC_BATCH * 4];
    struct iovec tx_iov[PC_BATCH];
    int tx_n;
    /* receive batch */
    uint8_t *rx_bufs;
    struct mmsghdr rx_msgs[PC_BATCH];
    struct iovec rx_iov[PC_BATCH];
    struct sockaddr_in rx_addr[PC_BATCH];
    /* what went on the wire (every unicast copy counted) */
    uint64_t wire_datagrams, wire_bytes, rx_datagrams, rx_bytes, syscalls_tx, syscalls_rx;
    uint64_t rejected;
} pc_host;

/* Binds the socket of member id and creates its node from cfg (whose
 * members must be 0..n-1). Returns 0 or exits with a message. */
static inline int pc_host_open(pc_host *h, const phasecast_config *cfg, int n, const char *host,
                        int base_port) {
    memset(h, 0, sizeof *h);
    h->id = cfg->id;
    h->n = n;
    h->mtu = cfg->mtu;
    for (int i = 0; i < n; i++) {
        h->peers[i].sin_family = AF_INET;
        h->peers[i].sin_port = htons((uint16_t)(base_port + i));
        if (inet_pton(AF_INET, host, &h->peers[i].sin_addr) != 1) {
            fprintf(stderr, "bad address %s\n", host);
            exit(2);
        }
    }
    h->fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (h->fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Room for bursts of large datagrams; FORCE works as root (CI). */
    int buf = 8 << 20;
    if (setsockopt(h->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
        setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (setsockopt(h->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0)
        setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (bind(h->fd, (struct sockaddr *)&h->peers[h->id], sizeof h->peers[h->id]) != 0) {
        fprintf(stderr, "bind %s:%d: %s\n", host, base_port + h->id, strerror(errno));
        exit(2);
    }
    phasecast_status s = phasecast_node_create(cfg, pc_now_us(), &h->node);
    if (s != PHASECAST_OK)
        pc_die("phasecast_node_create", s);
    h->tx_bufs = malloc((size_t)PC_BATCH * h->mtu);
    h->rx_bufs = malloc((size_t)PC_BATCH * h->mtu);
    if (!h->tx_bufs || !h->rx_bufs) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int i = 0; i < PC_BATCH; i++) {
        h->rx_iov[i].iov_base = h->rx_bufs + (size_t)i * h->mtu;
        h->rx_iov[i].iov_len = h->mtu;
    }
    h->heard[h->id] = 1;
    h->heard_count = 1;
    return 0;
}

static inline void pc_host_close(pc_host *h) {
    phasecast_node_destroy(&h->node);
    close(h->fd);
    free(h->tx_bufs);
    free(h->rx_bufs);
}

static inline void pc_host_flush(pc_host *h) {
    int off = 0;
    while (off < h->tx_n) {
        int r = sendmmsg(h->fd, h->tx_msgs + off, (unsigned)(h->tx_n - off), 0);
        h->syscalls_tx++;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* A refused peer (ECONNREFUSED from an earlier ICMP) or a full
             * buffer: drop this copy, the protocol repairs losses. */
            off++;
            continue;
        }
        for (int i = off; i < off + r; i++) {
            h->wire_datagrams++;
            h->wire_bytes += h->tx_msgs[i].msg_len;
        }
        off += r;
    }
    h->tx_n = 0;
    h->tx_used = 0;
}

static inline void pc_host_queue(pc_host *h, int buf, size_t len, int to) {
    struct mmsghdr *m = &h->tx_msgs[h->tx_n++];
    memset(m, 0, sizeof *m);
    h->tx_iov[buf].iov_base = h->tx_bufs + (size_t)buf * h->mtu;
    h->tx_iov[buf].iov_len = len;
    m->msg_hdr.msg_iov = &h->tx_iov[buf];
    m->msg_hdr.msg_iovlen = 1;
    m->msg_hdr.msg_name = &h->peers[to];
    m->msg_hdr.msg_namelen = sizeof h->peers[to];
}

/* Drains poll_transmit into sendmmsg batches. Returns datagrams produced. */
static inline int pc_host_transmit(pc_host *h, uint64_t now) {
    int produced = 0;
    for (;;) {
        if (h->tx_used == PC_BATCH ||
            h->tx_n + h->n > (int)(sizeof h->tx_msgs / sizeof h->tx_msgs[0]))
            pc_host_flush(h);
        phasecast_transmit tx;
        uint8_t *buf = h->tx_bufs + (size_t)h->tx_used * h->mtu;
        phasecast_status s = phasecast_node_poll_transmit(h->node, now, buf, h->mtu, &tx);
        if (s == PHASECAST_WOULD_BLOCK)
            break;
        if (s != PHASECAST_OK)
            pc_die("phasecast_node_poll_transmit", s);
        int b = h->tx_used++;
        produced++;
        if (tx.destination.kind == PHASECAST_DEST_PEER) {
            if (tx.destination.id < (uint32_t)h->n)
                pc_host_queue(h, b, tx.len, (int)tx.destination.id);
        } else {
            for (int i = 0; i < h->n; i++)
                if (i != h->id && !h->dead[i])
                    pc_host_queue(h, b, tx.len, i);
        }
    }
    pc_host_flush(h);
    return produced;
}

/* HELO datagrams: "HELO", then 0 (a question) or 1 (an answer), then 0. */
static inline void pc_host_hello(pc_host *h, int to, uint8_t answer) {
    uint8_t m[6] = {'H', 'E', 'L', 'O', answer, 0};
    sendto(h->fd, m, sizeof m, 0, (struct sockaddr *)&h->peers[to], sizeof h->peers[to]);
}

/* The member id of a source address, or -1. */
static inline int pc_host_peer_of(const pc_host *h, const struct sockaddr_in *a) {
    int port = ntohs(a->sin_port);
    int i = port - ntohs(h->peers[0].sin_port);
    if (i < 0 || i >= h->n || a->sin_addr.s_addr != h->peers[i].sin_addr.s_addr)
        return -1;
    return i;
}

/* Receives everything waiting (up to `max_batches` recvmmsg calls) and hands
 * it to the node. Returns datagrams received. */
static inline int pc_host_receive(pc_host *h, uint64_t now, int max_batches) {
    int total = 0;
    for (int b = 0; b < max_batches; b++) {
        for (int i = 0; i < PC_BATCH; i++) {
            memset(&h->rx_msgs[i].msg_hdr, 0, sizeof h->rx_msgs[i].msg_hdr);
            h->rx_msgs[i].msg_hdr.msg_iov = &h->rx_iov[i];
            h->rx_msgs[i].msg_hdr.msg_iovlen = 1;
            h->rx_msgs[i].msg_hdr.msg_name = &h->rx_addr[i];
            h->rx_msgs[i].msg_hdr.msg_namelen = sizeof h->rx_addr[i];
        }
        int r = recvmmsg(h->fd, h->rx_msgs, PC_BATCH, MSG_DONTWAIT, NULL);
        h->syscalls_rx++;
        if (r <= 0)
            break;
        for (int i = 0; i < r; i++) {
            uint8_t *d = h->rx_iov[i].iov_base;
            size_t len = h->rx_msgs[i].msg_len;
            int from = pc_host_peer_of(h, &h->rx_addr[i]);
            if (from < 0)
                continue;
            h->rx_datagrams++;
            h->rx_bytes += len;
            if (len == 6 && memcmp(d, "HELO", 4) == 0) {
                if (!h->heard[from]) {
                    h->heard[from] = 1;
                    h->heard_count++;
                }
                if (d[4] == 0)
                    pc_host_hello(h, from, 1);
                continue;
            }
            uint32_t reason = 0;
            phasecast_status s =
                phasecast_node_handle_datagram(h->node, now, (uint16_t)from, d, len, &reason);
            if (s == PHASECAST_DATAGRAM_REJECTED)
                h->rejected++;
            else if (s != PHASECAST_OK)
                pc_die("phasecast_node_handle_datagram", s);
        }
        total += r;
        if (r < PC_BATCH)
            break;
    }
    return total;
}

/* Fires the node's alarms when due; returns the next deadline. */
static inline uint64_t pc_host_timers(pc_host *h, uint64_t now) {
    uint64_t t = PHASECAST_NEVER;
    phasecast_node_next_timeout(h->node, &t);
    if (t <= now) {
        phasecast_node_handle_timeout(h->node, now);
        phasecast_node_next_timeout(h->node, &t);
    }
    return t;
}

/* Sleeps in ppoll() (poll() with a timespec, POSIX.1-2024) until a file
 * descriptor is ready or `deadline` (µs, capped at `cap_us` from now).
 * Microsecond precision: poll()'s millisecond timeout would round every
 * alarm up and pace rate-limited senders in 1 ms bursts. */
static inline int pc_wait(struct pollfd *fds, nfds_t n, uint64_t now, uint64_t deadline,
                          uint64_t cap_us) {
    uint64_t dt = deadline > now ? deadline - now : 0;
    if (dt > cap_us)
        dt = cap_us;
    struct timespec ts = {(time_t)(dt / 1000000u), (long)(dt % 1000000u) * 1000};
    return ppoll(fds, n, &ts, NULL);
}

/* The start-up barrier: returns once every peer was heard from (or after
 * timeout_ms, returning -1). Datagrams of peers that started earlier are
 * handed to the node meanwhile. */
static inline int pc_host_barrier(pc_host *h, int timeout_ms) {
    uint64_t start = pc_now_us(), last = 0;
    while (h->heard_count < h->n) {
        uint64_t now = pc_now_us();
        if (now - start > (uint64_t)timeout_ms * 1000)
            return -1;
        if (now - last > 20000) {
            for (int i = 0; i < h->n; i++)
                if (i != h->id && !h->heard[i])
                    pc_host_hello(h, i, 0);
            last = now;
        }
        struct pollfd p = {h->fd, POLLIN, 0};
        pc_wait(&p, 1, now, now + 10000, 10000);
        pc_host_receive(h, pc_now_us(), 4);
        pc_host_timers(h, pc_now_us());
        pc_host_transmit(h, pc_now_us());
    }
    return 0;
}

#endif
