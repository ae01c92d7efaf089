/*
 * kvbench: load generator and small client for kvnode.
 *
 *   kvbench [--port C] [--replicas N] [--target all|I] [--conns K]
 *           [--duration S] [--set-pct P] [--keys K] [--value-size V] [--seed X]
 *   kvbench --replica I --cmd "LINE" [--port C]     one request, prints the reply
 *   kvbench --replica I --abuse [--port C]          bad input must get ERR, replica lives
 *
 * The load: K connections to each target replica (all of the N, or one),
 * each a closed loop (one request in flight): SET with probability P %,
 * else GET, of a key drawn uniformly from K keys, values of V bytes. Every
 * second a progress line goes to stderr; at the end one line:
 *
 *   KVBENCH ops=… duration_s=… ops_per_s=… sets=… gets=… p50_ms=… p99_ms=…
 *           p999_ms=… max_ms=… errors=… lost=… conns_lost=…
 *
 * A replica that dies takes its connections with it: their requests in
 * flight count as lost, the others go on. Replies that are not what the
 * protocol says (garbage) count as errors. Defaults: C = 47200, N = 3,
 * target all, K = 16, S = 10, P = 50, 10,000 keys, V = 32.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define IN_CAP 8192

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Reads one reply line (blocking, with a timeout); returns its length or -1. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n] = 0;
            return (int)n;
        }
        n++;
    }
    return -1;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cmd(int port, const char *line) {
    int fd = connect_to(port);
    if (fd < 0) {
        fprintf(stderr, "kvbench: cannot connect to port %d\n", port);
        return 1;
    }
    char buf[8192];
    snprintf(buf, sizeof buf, "%s\n", line);
    if (send_all(fd, buf, strlen(buf)) != 0 || read_line(fd, buf, sizeof buf, 10000) < 0) {
        fprintf(stderr, "kvbench: no reply\n");
        close(fd);
        return 1;
    }
    printf("%s\n", buf);
    close(fd);
    return 0;
}

/* Bad input: each must be answered with ERR, and the replica must still
 * answer PING afterwards (also after abrupt disconnects). */
static int abuse(int port) {
    static char big[6000];
    memset(big, 'x', sizeof big - 1);
    char longkey[300], line[8000];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    const char *cases[8];
    int nc = 0;
    cases[nc++] = "FROB a b";
    cases[nc++] = "\x01\x02\x03\xff garbage";
    cases[nc++] = "GET";
    cases[nc++] = "SET onlykey";
    snprintf(line, sizeof line, "SET %s v", longkey);
    cases[nc++] = line;
    cases[nc++] = big; /* over-long line */
    cases[nc++] = "";
    cases[nc++] = "HASH notanumber";
    int fails = 0;
    int fd = connect_to(port);
    if (fd < 0)
        return 1;
    for (int i = 0; i < nc; i++) {
        char req[8200], rep[512];
        snprintf(req, sizeof req, "%s\n", cases[i]);
        if (send_all(fd, req, strlen(req)) != 0 || read_line(fd, rep, sizeof rep, 5000) < 0 ||
            strncmp(rep, "ERR ", 4) != 0) {
            fprintf(stderr, "abuse case %d: no ERR reply\n", i);
            fails++;
            close(fd);
            fd = connect_to(port);
            if (fd < 0)
                return 1;
        } else {
            printf("abuse case %d: %s\n", i, rep);
        }
    }
    close(fd);
    /* Abrupt disconnects: half a line; a SET whose reply nobody reads. */
    for (int i = 0; i < 20; i++) {
        fd = connect_to(port);
        if (fd < 0)
            return 1;
        const char *half = i % 2 ? "SET abrupt" : "SET abrupt-key value-of-a-client-that-left\n";
        if (send_all(fd, half, strlen(half)) != 0) { /* the replica may close first */
        }
        struct linger lg = {1, 0}; /* RST instead of FIN */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    fd = connect_to(port);
    char rep[64];
    if (fd < 0 || send_all(fd, "PING\n", 5) != 0 || read_line(fd, rep, sizeof rep, 5000) < 0 ||
        strcmp(rep, "PONG") != 0) {
        fprintf(stderr, "abuse: the replica no longer answers\n");
        return 1;
    }
    close(fd);
    printf("abuse: %d of %d bad requests answered with ERR; replica alive\n", nc - fails, nc);
    return fails ? 1 : 0;
}

typedef struct conn {
    int fd;
    int replica;
    int is_set;
    uint64_t sent_at;
    char in[IN_CAP];
    size_t in_len;
} conn;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: kvbench [--port C] [--replicas N] [--target all|I] [--conns K]\n"
                    "               [--duration S] [--set-pct P] [--keys K] [--value-size V]\n"
                    "       kvbench --replica I --cmd LINE | --abuse [--port C]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long port = 47200, replicas = 3, target = -1, conns_per = 16, set_pct = 50, keys = 10000,
         vsize = 32, replica = -1;
    double duration = 10;
    const char *one_cmd = NULL;
    int do_abuse = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--abuse")) {
            do_abuse = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        long x = strtol(v, NULL, 10);
        if (!strcmp(k, "--port"))
            port = x;
        else if (!strcmp(k, "--replicas"))
            replicas = x;
        else if (!strcmp(k, "--target"))
            target = strcmp(v, "all") ? x : -1;
        else if (!strcmp(k, "--conns"))
            conns_per = x;
        else if (!strcmp(k, "--duration"))
            duration = strtod(v, NULL);
        else if (!strcmp(k, "--set-pct"))
            set_pct = x;
        else if (!strcmp(k, "--keys"))
            keys = x;
        else if (!strcmp(k, "--value-size"))
            vsize = x;
        else if (!strcmp(k, "--seed"))
            rng_state = (uint64_t)x;
        else if (!strcmp(k, "--replica"))
            replica = x;
        else if (!strcmp(k, "--cmd"))
            one_cmd = v;
        else
            usage();
    }
    signal(SIGPIPE, SIG_IGN);
    if (one_cmd || do_abuse) {
        if (replica < 0)
            usage();
        return one_cmd ? cmd((int)(port + replica), one_cmd) : abuse((int)(port + replica));
    }
    if (replicas < 1 || conns_per < 1 || keys < 1 || vsize < 1 || vsize > 4000 || set_pct < 0 ||
        set_pct > 100 || duration <= 0)
        usage();

    static conn conns[MAX_CONNS];
    int nconns = 0;
    for (long r = 0; r < replicas; r++) {
        if (target >= 0 && r != target)
            continue;
        for (long c = 0; c < conns_per && nconns < MAX_CONNS; c++) {
            int fd = connect_to((int)(port + r));
            if (fd < 0) {
                fprintf(stderr, "kvbench: cannot connect to replica %ld\n", r);
                return 1;
            }
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            conns[nconns].fd = fd;
            conns[nconns].replica = (int)r;
            nconns++;
        }
    }
    char *value = malloc((size_t)vsize + 1);
    size_t lat_cap = 1 << 20, lat_n = 0;
    uint32_t *lat = malloc(lat_cap * sizeof *lat);
    if (!value || !lat)
        return 2;
    uint64_t ops = 0, sets = 0, gets = 0, errors = 0, lost = 0, conns_lost = 0, last_ops = 0;
    uint64_t t0 = now_us(), end = t0 + (uint64_t)(duration * 1e6), next_report = t0 + 1000000;
    int alive = nconns;
    static struct pollfd pfd[MAX_CONNS];

    /* First request on every connection. */
    for (int i = 0; i < nconns; i++)
        conns[i].sent_at = 0;
    for (;;) {
        uint64_t now = now_us();
        if (now >= end || alive == 0)
            break;
        for (int i = 0; i < nconns; i++) {
            conn *c = &conns[i];
            if (c->fd < 0 || c->sent_at)
                continue;
            char req[4200];
            long key = (long)(rnd() % (uint64_t)keys);
            int n;
            c->is_set = (long)(rnd() % 100) < set_pct;
            if (c->is_set) {
                uint64_t x = rnd();
                for (long j = 0; j < vsize; j++)
                    value[j] = (char)('a' + (x >> (j % 60)) % 26);
                value[vsize] = 0;
                n = snprintf(req, sizeof req, "SET k%ld %s\n", key, value);
            } else {
                n = snprintf(req, sizeof req, "GET k%ld\n", key);
            }
            c->sent_at = now_us();
            if (send_all(c->fd, req, (size_t)n) != 0) {
                close(c->fd);
                c->fd = -1;
                alive--;
                conns_lost++;
                lost++;
            }
        }
        for (int i = 0; i < nconns; i++)
            pfd[i] = (struct pollfd){conns[i].fd, POLLIN, 0};
        int wait = (int)((end - now) / 1000);
        poll(pfd, (nfds_t)nconns, wait > 100 ? 100 : wait + 1);
        now = now_us();
        for (int i = 0; i < nconns; i++) {
            conn *c = &conns[i];
            if (c->fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(c->fd);
                c->fd = -1;
                alive--;
                conns_lost++;
                if (c->sent_at)
                    lost++;
                fprintf(stderr, "kvbench: lost a connection to replica %d (%d left)\n",
                        c->replica, alive);
                continue;
            }
            if (r < 0)
                continue;
            c->in_len += (size_t)r;
            char *nl;
            while ((nl = memchr(c->in, '\n', c->in_len))) {
                size_t len = (size_t)(nl - c->in) + 1;
                int ok = c->sent_at &&
                         (c->is_set ? !strncmp(c->in, "OK\n", 3)
                                    : (!strncmp(c->in, "VALUE ", 6) || !strncmp(c->in, "NOTFOUND\n", 9)));
                if (ok) {
                    ops++;
                    if (c->is_set)
                        sets++;
                    else
                        gets++;
                    if (lat_n == lat_cap) {
                        uint32_t *l = realloc(lat, 2 * lat_cap * sizeof *lat);
                        if (l) {
                            lat = l;
                            lat_cap *= 2;
                        }
                    }
                    if (lat_n < lat_cap)
                        lat[lat_n++] = (uint32_t)(now - c->sent_at);
                } else {
                    errors++;
                }
                c->sent_at = 0;
                memmove(c->in, c->in + len, c->in_len - len);
                c->in_len -= len;
            }
            if (c->in_len == IN_CAP) { /* garbage without newlines */
                errors++;
                c->in_len = 0;
            }
        }
        if (now >= next_report) {
            fprintf(stderr, "kvbench: t=%.0fs %" PRIu64 " ops/s, %d/%d connections\n",
                    (double)(now - t0) / 1e6, ops - last_ops, alive, nconns);
            last_ops = ops;
            next_report += 1000000;
        }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    double p50 = 0, p99 = 0, p999 = 0, mx = 0;
    if (lat_n) {
        qsort(lat, lat_n, sizeof *lat, cmp_u32);
        p50 = lat[lat_n * 50 / 100] / 1000.0;
        p99 = lat[lat_n * 99 / 100] / 1000.0;
        p999 = lat[lat_n * 999 / 1000] / 1000.0;
        mx = lat[lat_n - 1] / 1000.0;
    }
    printf("KVBENCH ops=%" PRIu64 " duration_s=%.2f ops_per_s=%.0f sets=%" PRIu64 " gets=%" PRIu64
           " p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%" PRIu64 " lost=%" PRIu64
           " conns_lost=%" PRIu64 "\n",
           ops, secs, (double)ops / secs, sets, gets, p50, p99, p999, mx, errors, lost,
           conns_lost);
    free(lat);
    free(value);
    return errors ? 1 : 0;
}
