/*
 * kvnode: a replicated key-value daemon on the phasecast C ABI.
 *
 *   kvnode --id I --nodes N [--base-port P] [--client-port C] [--stats FILE]
 *          [--mtu B] [--hb-ms H] [--fd-ms F] [--window W] [--sched other|rr]
 *
 * One process per replica, plain POSIX C (UDP and TCP sockets, ppoll()).
 * Replica i talks to the others on UDP 127.0.0.1:(P + i) (P = 47000) and
 * serves clients on TCP 127.0.0.1:(C + i) (C = 47200). --sched rr runs the
 * replica under SCHED_RR like corosync (see pc_sched); the default is the
 * normal policy because `make demo` runs its client on the same two cores,
 * and real-time replicas busy with a flat-out load would starve it.
 *
 * Replication: SET and DEL are broadcast in uniform total order and applied
 * by every replica in delivery order, so all replicas go through the same
 * sequence of stores; the client's reply is sent when the replica it talks
 * to applies the operation. GET is answered from the local store. A
 * connection's requests are handled one replicated operation at a time
 * (its later lines wait), so replies come back in request order and a GET
 * sees the connection's earlier writes.
 *
 * Client protocol: one request per line ('\n', optional '\r'):
 *   SET <key> <value>   -> OK                     value: the rest of the line
 *   DEL <key>           -> OK | NOTFOUND
 *   GET <key>           -> VALUE <value> | NOTFOUND
 *   PING                -> PONG
 *   SYNC                -> SYNCED <mark> <digest> <keys> <applied>
 *       broadcasts a marker; every replica records its store digest at the
 *       marker's place in the total order
 *   HASH [<mark>]       -> HASH <mark|-> <digest> <keys> <applied> | PENDING
 *   STATS               -> STATS key=value ...
 * Bad input (unknown command, missing arguments, key over 250 bytes, value
 * over 4000 bytes, line over 4400 bytes, control bytes in a key) gets
 * "ERR <why>" and the daemon goes on; a client that disconnects abruptly
 * loses its pending replies, nothing else.
 *
 * The store digest is the sum over entries of a 64-bit hash of (key,
 * value): independent of insertion order, so two replicas hold identical
 * stores exactly when (with overwhelming probability) their digests match.
 *
 * Every 100 ms (and at exit) the replica writes its counters to --stats.
 * A replica excluded from the view (it was suspected while alive) exits
 * with status 3: rejoining would need a state transfer, which this example
 * does not do.
 */
#define _GNU_SOURCE
#include "pc_host.h"

#include <inttypes.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/types.h>

#define MAX_KEY 250
#define MAX_VALUE 4000
#define MAX_LINE 4400
#define MAX_CONNS 1024
#define MAX_OUT (1 << 20)
#define PENDING 65536 /* tokens of replicated operations awaiting delivery */
#define MARKS 64

/* ---------------------------------------------------------------- store */

typedef struct entry {
    struct entry *next;
    uint64_t hash; /* of the key */
    uint64_t digest; /* of (key, value) */
    uint16_t klen;
    uint16_t vlen;
    char data[]; /* key, then value */
} entry;

typedef struct store {
    entry **buckets;
    size_t nbuckets, count;
    uint64_t digest;
} store;

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t kv_digest(const char *k, size_t kl, const char *v, size_t vl) {
    uint64_t h = fnv(k, kl, 1469598103934665603ull);
    h = fnv("\xff", 1, h);
    return mix(fnv(v, vl, h));
}

static entry **store_find(store *s, const char *k, size_t kl, uint64_t h) {
    entry **e = &s->buckets[h & (s->nbuckets - 1)];
    while (*e && !((*e)->hash == h && (*e)->klen == kl && memcmp((*e)->data, k, kl) == 0))
        e = &(*e)->next;
    return e;
}

static void store_grow(store *s) {
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
    entry **b = calloc(nb, sizeof *b);
    if (!b) {
        fprintf(stderr, "kvnode: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

static void store_set(store *s, const char *k, size_t kl, const char *v, size_t vl) {
    if (s->count >= s->nbuckets)
        store_grow(s);
    uint64_t h = fnv(k, kl, 1469598103934665603ull);
    entry **slot = store_find(s, k, kl, h);
    entry *old = *slot;
    entry *e = malloc(sizeof *e + kl + vl);
    if (!e) {
        fprintf(stderr, "kvnode: out of memory\n");
        exit(2);
    }
    e->hash = h;
    e->klen = (uint16_t)kl;
    e->vlen = (uint16_t)vl;
    memcpy(e->data, k, kl);
    memcpy(e->data + kl, v, vl);
    e->digest = kv_digest(k, kl, v, vl);
    s->digest += e->digest;
    if (old) {
        s->digest -= old->digest;
        e->next = old->next;
        free(old);
    } else {
        e->next = NULL;
        s->count++;
    }
    *slot = e;
}

static int store_del(store *s, const char *k, size_t kl) {
    if (!s->nbuckets)
        return 0;
    entry **slot = store_find(s, k, kl, fnv(k, kl, 1469598103934665603ull));
    entry *old = *slot;
    if (!old)
        return 0;
    *slot = old->next;
    s->digest -= old->digest;
    s->count--;
    free(old);
    return 1;
}

static const entry *store_get(store *s, const char *k, size_t kl) {
    if (!s->nbuckets)
        return NULL;
    return *store_find(s, k, kl, fnv(k, kl, 1469598103934665603ull));
}

/* ---------------------------------------------------------- connections */

typedef struct conn {
    int fd; /* -1: free */
    uint32_t gen;
    char in[MAX_LINE + 1];
    size_t in_len;
    int skipping; /* discarding the rest of an over-long line */
    int waiting; /* a replicated operation of this connection is in flight */
    char *out;
    size_t out_len, out_cap, out_off;
} conn;

typedef struct pending {
    int conn; /* -1: free */
    uint32_t gen;
    uint32_t token;
} pending;

typedef struct mark {
    uint64_t id;
    uint64_t digest, keys, applied;
} mark;

static struct {
    pc_host h;
    int id, n;
    int listen_fd;
    conn conns[MAX_CONNS];
    pending pend[PENDING];
    uint32_t next_token;
    store st;
    mark marks[MARKS];
    int nmarks;
    uint64_t applied, sets, dels, gets, client_errors, refused_full, conns_accepted, conns_lost;
    uint32_t view_id, view_members, views_seen, suspicions;
    uint16_t members[PHASECAST_MAX_MEMBERS];
    int stalled; /* some connection has input waiting for window room */
    int conn_top; /* one past the highest connection slot in use */
    const char *stats_path;
} K;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void conn_close(int i) {
    conn *c = &K.conns[i];
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->in_len = c->out_len = c->out_off = 0;
    c->skipping = c->waiting = 0;
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
}

static void reply(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int i, const char *fmt, ...) {
    conn *c = &K.conns[i];
    if (c->fd < 0)
        return;
    char line[MAX_VALUE + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (c->out_len + (size_t)n > MAX_OUT) { /* a client that does not read */
        K.conns_lost++;
        conn_close(i);
        return;
    }
    if (c->out_len + (size_t)n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + (size_t)n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            conn_close(i);
            return;
        }
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, (size_t)n);
    c->out_len += (size_t)n;
}

static void conn_flush(int i) {
    conn *c = &K.conns[i];
    while (c->fd >= 0 && c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                K.conns_lost++;
                conn_close(i);
            }
            return;
        }
        c->out_off += (size_t)w;
    }
    if (c->fd >= 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
}

/* --------------------------------------------------------- replication */

/* Payload: op (S, D, M), token (4, big-endian), key length (1), value
 * length (2, big-endian), key, value. */
#define OP_HDR 8

static phasecast_status replicate(int ci, char op, const char *k, size_t kl, const char *v,
                                  size_t vl) {
    uint8_t msg[OP_HDR + MAX_KEY + MAX_VALUE];
    uint32_t token = K.next_token;
    pending *p = &K.pend[token % PENDING];
    if (p->conn >= 0) {
        /* A token 65,536 operations old still waits: its broadcast was lost
         * (a view change found nobody holding it). Tell that client. */
        int old = p->conn;
        if (K.conns[old].fd >= 0 && K.conns[old].gen == p->gen && K.conns[old].waiting) {
            K.conns[old].waiting = 0;
            reply(old, "ERR lost in a view change; retry");
        }
        p->conn = -1;
    }
    msg[0] = (uint8_t)op;
    msg[1] = (uint8_t)(token >> 24);
    msg[2] = (uint8_t)(token >> 16);
    msg[3] = (uint8_t)(token >> 8);
    msg[4] = (uint8_t)token;
    msg[5] = (uint8_t)kl;
    msg[6] = (uint8_t)(vl >> 8);
    msg[7] = (uint8_t)vl;
    memcpy(msg + OP_HDR, k, kl);
    memcpy(msg + OP_HDR + kl, v, vl);
    phasecast_status s =
        phasecast_node_broadcast(K.h.node, pc_now_us(), msg, OP_HDR + kl + vl, NULL);
    if (s == PHASECAST_OK) {
        p->conn = ci;
        p->gen = K.conns[ci].gen;
        p->token = token;
        K.next_token++;
    }
    return s;
}

static void apply(uint16_t sender, const uint8_t *p, size_t len, uint64_t sn) {
    if (len < OP_HDR)
        return;
    uint32_t token = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    size_t kl = p[5], vl = (size_t)p[6] << 8 | p[7];
    if (OP_HDR + kl + vl != len)
        return;
    const char *k = (const char *)p + OP_HDR, *v = k + kl;
    int found = 1;
    K.applied++;
    (void)sn;
    switch (p[0]) {
    case 'S':
        store_set(&K.st, k, kl, v, vl);
        K.sets++;
        break;
    case 'D':
        found = store_del(&K.st, k, kl);
        K.dels++;
        break;
    case 'M': {
        mark *m = &K.marks[K.nmarks++ % MARKS];
        m->id = (uint64_t)sender << 32 | token;
        m->digest = K.st.digest;
        m->keys = K.st.count;
        m->applied = K.applied;
        break;
    }
    default:
        return;
    }
    if (sender != K.id)
        return;
    pending *pe = &K.pend[token % PENDING];
    if (pe->conn < 0 || pe->token != token)
        return;
    int ci = pe->conn;
    pe->conn = -1;
    if (ci < 0 || K.conns[ci].fd < 0 || K.conns[ci].gen != pe->gen)
        return; /* the client went away */
    K.conns[ci].waiting = 0;
    if (p[0] == 'M')
        reply(ci, "SYNCED %" PRIu64 " %016" PRIx64 " %zu %" PRIu64, (uint64_t)sender << 32 | token,
              K.st.digest, K.st.count, K.applied);
    else
        reply(ci, found ? "OK" : "NOTFOUND");
}

/* ------------------------------------------------------------- requests */

static void stats_line(char *buf, size_t cap) {
    phasecast_counters c;
    phasecast_node_counters(K.h.node, &c);
    snprintf(buf, cap,
             "id=%d view_id=%" PRIu32 " view_members=%" PRIu32 " views_seen=%" PRIu32
             " suspicions=%" PRIu32 " applied=%" PRIu64 " sets=%" PRIu64 " dels=%" PRIu64
             " gets=%" PRIu64 " keys=%zu digest=%016" PRIx64 " client_errors=%" PRIu64
             " frames_sent=%" PRIu64 " bytes_sent=%" PRIu64 " records_sent=%" PRIu64
             " wire_datagrams=%" PRIu64 " wire_bytes=%" PRIu64 " rx_datagrams=%" PRIu64
             " rx_bytes=%" PRIu64 " retransmissions=%" PRIu64 " view_changes=%" PRIu64
             " messages_delivered=%" PRIu64 " refused_full=%" PRIu64 " conns_accepted=%" PRIu64
             " conns_lost=%" PRIu64,
             K.id, K.view_id, K.view_members, K.views_seen, K.suspicions, K.applied, K.sets, K.dels,
             K.gets, K.st.count, K.st.digest, K.client_errors, c.frames_sent, c.bytes_sent,
             c.records_sent, K.h.wire_datagrams, K.h.wire_bytes, K.h.rx_datagrams, K.h.rx_bytes,
             c.retransmissions, c.view_changes, c.messages_delivered, K.refused_full,
             K.conns_accepted, K.conns_lost);
}

static void write_stats(void) {
    if (!K.stats_path)
        return;
    char tmp[4096], line[2048];
    snprintf(tmp, sizeof tmp, "%s.tmp", K.stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    stats_line(line, sizeof line);
    fprintf(f, "%s\n", line);
    fclose(f);
    rename(tmp, K.stats_path);
}

static void bad(int ci, const char *why) {
    K.client_errors++;
    reply(ci, "ERR %s", why);
}

/* Splits the next space-separated token off *s (of *n bytes). */
static int token(const char **s, size_t *n, const char **t, size_t *tl) {
    while (*n && **s == ' ')
        (*s)++, (*n)--;
    *t = *s;
    while (*n && **s != ' ')
        (*s)++, (*n)--;
    *tl = (size_t)(*s - *t);
    return *tl > 0;
}

static int key_ok(int ci, const char *k, size_t kl) {
    if (kl > MAX_KEY) {
        bad(ci, "key too long (max 250 bytes)");
        return 0;
    }
    for (size_t i = 0; i < kl; i++)
        if ((unsigned char)k[i] < 0x21 || k[i] == 0x7f) {
            bad(ci, "control byte in key");
            return 0;
        }
    return 1;
}

/* Handles one line. Returns 0 when it must be retried later (window full). */
static int request(int ci, const char *line, size_t n) {
    if (n && line[n - 1] == '\r')
        n--;
    const char *cmd, *k;
    size_t cl, kl;
    if (!token(&line, &n, &cmd, &cl)) {
        bad(ci, "empty request");
        return 1;
    }
#define IS(w) (cl == sizeof(w) - 1 && memcmp(cmd, w, cl) == 0)
    if (IS("GET")) {
        if (!token(&line, &n, &k, &kl) || n) {
            bad(ci, "usage: GET <key>");
            return 1;
        }
        if (!key_ok(ci, k, kl))
            return 1;
        K.gets++;
        const entry *e = store_get(&K.st, k, kl);
        if (e)
            reply(ci, "VALUE %.*s", (int)e->vlen, e->data + e->klen);
        else
            reply(ci, "NOTFOUND");
        return 1;
    }
    if (IS("SET") || IS("DEL")) {
        int set = IS("SET");
        if (!token(&line, &n, &k, &kl)) {
            bad(ci, set ? "usage: SET <key> <value>" : "usage: DEL <key>");
            return 1;
        }
        if (!key_ok(ci, k, kl))
            return 1;
        const char *v = "";
        size_t vl = 0;
        if (set) {
            if (!n) {
                bad(ci, "usage: SET <key> <value>");
                return 1;
            }
            v = line + 1; /* the rest of the line after one space */
            vl = n - 1;
            if (vl > MAX_VALUE) {
                bad(ci, "value too long (max 4000 bytes)");
                return 1;
            }
        } else if (n) {
            bad(ci, "usage: DEL <key>");
            return 1;
        }
        phasecast_status s = replicate(ci, set ? 'S' : 'D', k, kl, v, vl);
        if (s == PHASECAST_FULL) {
            K.refused_full++;
            return 0;
        }
        if (s != PHASECAST_OK) {
            K.client_errors++;
            reply(ci, "ERR replication refused: %s", phasecast_status_str(s));
            return 1;
        }
        K.conns[ci].waiting = 1;
        return 1;
    }
    if (IS("SYNC")) {
        phasecast_status s = replicate(ci, 'M', "", 0, "", 0);
        if (s == PHASECAST_FULL)
            return 0;
        if (s != PHASECAST_OK) {
            reply(ci, "ERR replication refused: %s", phasecast_status_str(s));
            return 1;
        }
        K.conns[ci].waiting = 1;
        return 1;
    }
    if (IS("HASH")) {
        const char *m;
        size_t ml;
        if (!token(&line, &n, &m, &ml)) {
            reply(ci, "HASH - %016" PRIx64 " %zu %" PRIu64, K.st.digest, K.st.count, K.applied);
            return 1;
        }
        char *end;
        char buf[32];
        if (ml >= sizeof buf) {
            bad(ci, "usage: HASH [<mark>]");
            return 1;
        }
        memcpy(buf, m, ml);
        buf[ml] = 0;
        uint64_t id = strtoull(buf, &end, 10);
        if (*end) {
            bad(ci, "usage: HASH [<mark>]");
            return 1;
        }
        for (int i = 0; i < MARKS && i < K.nmarks; i++)
            if (K.marks[i].id == id) {
                reply(ci, "HASH %" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRIu64, id,
                      K.marks[i].digest, K.marks[i].keys, K.marks[i].applied);
                return 1;
            }
        reply(ci, "PENDING");
        return 1;
    }
    if (IS("PING")) {
        reply(ci, "PONG");
        return 1;
    }
    if (IS("STATS")) {
        char s[2048];
        stats_line(s, sizeof s);
        reply(ci, "STATS %s", s);
        return 1;
    }
#undef IS
    bad(ci, "unknown command (SET, GET, DEL, PING, SYNC, HASH, STATS)");
    return 1;
}

/* Handles the complete lines in a connection's input while it may. */
static void conn_process(int ci) {
    conn *c = &K.conns[ci];
    size_t off = 0;
    while (c->fd >= 0 && !c->waiting) {
        char *nl = memchr(c->in + off, '\n', c->in_len - off);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + off));
        if (c->skipping) {
            c->skipping = 0;
        } else if (!request(ci, c->in + off, len)) {
            K.stalled = 1;
            break; /* retry this line once the window has room */
        }
        off += len + 1;
    }
    if (c->fd < 0)
        return;
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len == MAX_LINE && !memchr(c->in, '\n', c->in_len)) {
        /* An over-long line: refuse it and drop bytes up to its end. */
        if (!c->skipping)
            bad(ci, "line too long (max 4400 bytes)");
        c->skipping = 1;
        c->in_len = 0;
    }
}

static void conn_read(int ci) {
    conn *c = &K.conns[ci];
    for (;;) {
        if (c->in_len == MAX_LINE) {
            conn_process(ci);
            if (c->fd < 0 || c->in_len == MAX_LINE)
                return; /* waiting: read more later */
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, MAX_LINE - c->in_len, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (r < 0)
                K.conns_lost++;
            conn_close(ci);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        c->in_len += (size_t)r;
        conn_process(ci);
        if (c->fd < 0 || c->waiting)
            return;
    }
}

static void accept_all(void) {
    for (;;) {
        int fd = accept(K.listen_fd, NULL, NULL);
        if (fd < 0)
            return;
        int i = 0;
        while (i < MAX_CONNS && K.conns[i].fd >= 0)
            i++;
        if (i == MAX_CONNS) {
            const char *m = "ERR too many connections\n";
            if (send(fd, m, strlen(m), MSG_NOSIGNAL) < 0) { /* nothing more to do */
            }
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        K.conns[i].fd = fd;
        K.conns_accepted++;
        if (i >= K.conn_top)
            K.conn_top = i + 1;
    }
}

/* ----------------------------------------------------------------- main */

static void events(void) {
    phasecast_event ev;
    while (phasecast_node_poll_event(K.h.node, &ev) == PHASECAST_OK) {
        switch (ev.kind) {
        case PHASECAST_EVENT_DELIVERED:
            apply(ev.data.delivered.sender, ev.data.delivered.payload,
                  ev.data.delivered.payload_len, ev.data.delivered.sn);
            break;
        case PHASECAST_EVENT_VIEW_CHANGED: {
            K.view_id = ev.data.view.view_id;
            K.view_members = ev.data.view.member_count;
            K.views_seen++;
            char list[PHASECAST_MAX_MEMBERS * 6 + 1] = "";
            size_t o = 0;
            for (uint32_t i = 0; i < ev.data.view.member_count; i++) {
                K.members[i] = ev.data.view.members[i];
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%u", i ? "," : "",
                                      (unsigned)ev.data.view.members[i]);
            }
            memset(K.h.dead, 0, sizeof K.h.dead);
            for (int i = 0; i < K.n; i++) {
                int in = 0;
                for (uint32_t j = 0; j < ev.data.view.member_count; j++)
                    in |= ev.data.view.members[j] == i;
                K.h.dead[i] = !in;
            }
            fprintf(stderr, "kvnode %d: view %" PRIu32 " installed: members %s (sequencer %u)\n",
                    K.id, K.view_id, list, (unsigned)ev.data.view.members[0]);
            break;
        }
        case PHASECAST_EVENT_SUSPECTED:
            K.suspicions++;
            fprintf(stderr, "kvnode %d: suspects %u\n", K.id,
                    (unsigned)ev.data.suspected.node);
            break;
        case PHASECAST_EVENT_EXCLUDED:
            fprintf(stderr, "kvnode %d: excluded from the view; exiting (no state transfer)\n",
                    K.id);
            write_stats();
            exit(3);
        default:
            break;
        }
    }
}

static void usage(void) {
    fprintf(stderr, "usage: kvnode --id I --nodes N [--base-port P] [--client-port C] "
                    "[--stats FILE] [--mtu B] [--hb-ms H] [--fd-ms F] [--window W]\n"
                    "              [--sched other|rr]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long id = -1, nodes = 0, base_port = 47000, client_port = 47200, mtu = 65507, hb_ms = 20,
         fd_ms = 300, window = 64;
    const char *sched = "other";
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *k = argv[i], *v = argv[++i];
        long x = strtol(v, NULL, 10);
        if (!strcmp(k, "--id"))
            id = x;
        else if (!strcmp(k, "--nodes"))
            nodes = x;
        else if (!strcmp(k, "--base-port"))
            base_port = x;
        else if (!strcmp(k, "--client-port"))
            client_port = x;
        else if (!strcmp(k, "--stats"))
            K.stats_path = v;
        else if (!strcmp(k, "--mtu"))
            mtu = x;
        else if (!strcmp(k, "--hb-ms"))
            hb_ms = x;
        else if (!strcmp(k, "--fd-ms"))
            fd_ms = x;
        else if (!strcmp(k, "--window"))
            window = x;
        else if (!strcmp(k, "--sched") && (!strcmp(v, "rr") || !strcmp(v, "other")))
            sched = v;
        else
            usage();
    }
    if (nodes < 1 || nodes > 63 || id < 0 || id >= nodes)
        usage();
    K.id = (int)id;
    K.n = (int)nodes;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char who[32];
    snprintf(who, sizeof who, "kvnode %ld", id);
    pc_sched(sched, who);
    for (int i = 0; i < MAX_CONNS; i++)
        K.conns[i].fd = -1;
    for (int i = 0; i < PENDING; i++)
        K.pend[i].conn = -1;

    uint16_t members[64];
    for (int i = 0; i < nodes; i++)
        members[i] = (uint16_t)i;
    phasecast_config cfg;
    phasecast_config_init(&cfg, (uint16_t)id, members, (size_t)nodes);
    cfg.mtu = (size_t)mtu;
    cfg.heartbeat_us = (uint64_t)hb_ms * 1000;
    cfg.fd_timeout_us = (uint64_t)fd_ms * 1000;
    cfg.tob_rto_us = 10000;
    cfg.tob_window = (size_t)window;
    cfg.seed = 0x6b76 ^ (uint64_t)id;
    pc_host_open(&K.h, &cfg, (int)nodes, "127.0.0.1", (int)base_port);

    K.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(K.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = K.h.peers[id];
    a.sin_port = htons((uint16_t)(client_port + id));
    if (bind(K.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(K.listen_fd, 512) != 0) {
        fprintf(stderr, "kvnode %ld: client port %ld: %s\n", id, client_port + id,
                strerror(errno));
        return 2;
    }
    fcntl(K.listen_fd, F_SETFL, fcntl(K.listen_fd, F_GETFL) | O_NONBLOCK);

    if (pc_host_barrier(&K.h, 30000) != 0) {
        fprintf(stderr, "kvnode %ld: peers did not start\n", id);
        return 1;
    }
    fprintf(stderr, "kvnode %ld: up, replicas on udp %ld.., clients on tcp 127.0.0.1:%ld\n", id,
            base_port, client_port + id);

    static struct pollfd pfd[MAX_CONNS + 2];
    static int pidx[MAX_CONNS + 2];
    uint64_t next_stats = 0;
    while (!stop_requested) {
        uint64_t now = pc_now_us();
        if (now >= next_stats) {
            write_stats();
            next_stats = now + 100000;
        }
        uint64_t wake = pc_host_timers(&K.h, now);
        if (next_stats < wake)
            wake = next_stats;
        int np = 0;
        pfd[np] = (struct pollfd){K.h.fd, POLLIN, 0};
        pidx[np++] = -1;
        pfd[np] = (struct pollfd){K.listen_fd, POLLIN, 0};
        pidx[np++] = -2;
        while (K.conn_top > 0 && K.conns[K.conn_top - 1].fd < 0)
            K.conn_top--;
        for (int i = 0; i < K.conn_top; i++) {
            conn *c = &K.conns[i];
            if (c->fd < 0)
                continue;
            short ev = 0;
            if (!c->waiting && c->in_len < MAX_LINE)
                ev |= POLLIN;
            if (c->out_len > c->out_off)
                ev |= POLLOUT;
            pfd[np] = (struct pollfd){c->fd, ev, 0};
            pidx[np++] = i;
        }
        int r = pc_wait(pfd, (nfds_t)np, now, K.stalled ? now : wake, 100000);
        if (r < 0 && errno != EINTR)
            break;
        now = pc_now_us();
        pc_host_receive(&K.h, now, 8);
        pc_host_timers(&K.h, now);
        events();
        if (K.stalled) { /* retry connections that waited for window room */
            K.stalled = 0;
            for (int i = 0; i < K.conn_top; i++)
                if (K.conns[i].fd >= 0 && !K.conns[i].waiting && K.conns[i].in_len)
                    conn_process(i);
        }
        for (int p = 1; p < np; p++) {
            if (!pfd[p].revents)
                continue;
            if (pidx[p] == -2) {
                accept_all();
                continue;
            }
            int i = pidx[p];
            if (pfd[p].revents & (POLLIN | POLLHUP | POLLERR))
                conn_read(i);
        }
        pc_host_transmit(&K.h, pc_now_us());
        for (int i = 0; i < K.conn_top; i++)
            if (K.conns[i].fd >= 0 && K.conns[i].out_len > K.conns[i].out_off)
                conn_flush(i);
    }
    write_stats();
    fprintf(stderr, "kvnode %d: stopping\n", K.id);
    return 0;
}
