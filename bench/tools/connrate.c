/* New connections per second against an HTTP server on 127.0.0.1:PORT.
 * Each connection: connect, send one request with "Connection: close", read
 * the response until the server closes, check it, close. CONC connections are
 * in flight at once (one thread, epoll).
 *
 *   connrate PORT SECONDS [CONC]     (CONC default 8)
 *   connrate PORT check              one request; prints the response, exit 0 if it is right
 *
 * Prints "conns=N seconds=S rate=R errors=E". Exit 1 if no connection succeeded
 * or more than 1% failed. Build: cc -O2 -o connrate connrate.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char REQ[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
static const char BODY[] = "\r\n\r\nHello, World!\n";
#define CONN_TIMEOUT 5.0

struct slot {
  int fd;
  int sent;
  double started;
  size_t len;
  char buf[512];
};

static struct sockaddr_in addr;
static int epfd;
static long done, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int response_ok(const struct slot *s) {
  size_t bl = sizeof BODY - 1;
  return s->len > bl && memcmp(s->buf, "HTTP/1.1 200", 12) == 0 &&
         memcmp(s->buf + s->len - bl, BODY, bl) == 0;
}

static void start(struct slot *s) {
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  s->sent = 0;
  s->len = 0;
  s->started = now();
  if (s->fd < 0) { perror("socket"); exit(1); }
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(s->fd, (struct sockaddr *)&addr, sizeof addr);
  if (r < 0 && errno != EINPROGRESS) {
    errors++;
    close(s->fd);
    s->fd = -1;
    return;
  }
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = s};
  epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &e);
}

static void finish(struct slot *s, int ok) {
  if (ok) done++; else errors++;
  close(s->fd); /* also removes it from epoll */
  s->fd = -1;
}

static void step(struct slot *s, uint32_t ev) {
  if (!s->sent) {
    if (ev & (EPOLLERR | EPOLLHUP)) { finish(s, 0); return; }
    if (send(s->fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQ - 1)) {
      finish(s, 0);
      return;
    }
    s->sent = 1;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &e);
    return;
  }
  for (;;) {
    char tmp[4096];
    ssize_t r = recv(s->fd, tmp, sizeof tmp, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      finish(s, 0);
      return;
    }
    if (r == 0) { finish(s, response_ok(s)); return; }
    size_t room = sizeof s->buf - 1 - s->len;
    if ((size_t)r > room) { finish(s, 0); return; } /* far too long for our response */
    memcpy(s->buf + s->len, tmp, (size_t)r);
    s->len += (size_t)r;
    s->buf[s->len] = 0;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s PORT SECONDS|check [CONC]\n", argv[0]); return 2; }
  signal(SIGPIPE, SIG_IGN);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[1]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int check = strcmp(argv[2], "check") == 0;
  double seconds = check ? 5.0 : atof(argv[2]);
  int conc = check ? 1 : (argc > 3 ? atoi(argv[3]) : 8);
  if (conc < 1 || conc > 1000) conc = 8;
  epfd = epoll_create1(0);
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  double t0 = now(), end = t0 + seconds;
  for (int i = 0; i < conc; i++) start(&slots[i]);
  struct epoll_event evs[64];
  long loops = 0;
  for (;;) {
    double t = now();
    int active = 0;
    for (int i = 0; i < conc; i++) {
      struct slot *s = &slots[i];
      if (s->fd >= 0 && t - s->started > CONN_TIMEOUT) finish(s, 0);
      if (s->fd < 0 && t < end && !check) start(s);
      if (s->fd >= 0) active++;
    }
    if (!active) break;
    if (check && done + errors > 0) break;
    if (++loops > 100000000L) break; /* bounded whatever happens */
    int n = epoll_wait(epfd, evs, 64, 100);
    for (int i = 0; i < n; i++) step(evs[i].data.ptr, evs[i].events);
    if (check && done + errors > 0) break;
  }
  double t = now() - t0;
  if (check) {
    printf("%s", slots[0].buf);
    printf("\n%s\n", done == 1 ? "check ok" : "check FAILED");
    return done == 1 ? 0 : 1;
  }
  printf("conns=%ld seconds=%.3f rate=%.1f errors=%ld\n", done, t, done / t, errors);
  return (done == 0 || errors * 100 > done) ? 1 : 0;
}
