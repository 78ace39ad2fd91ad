/* Open N keep-alive connections to an HTTP server on 127.0.0.1:PORT, send one
 * request on each and read its response (so the server has accepted every
 * connection and set it up), then hold them all idle.
 *
 *   idle PORT [N] [HOLD_S]    (defaults: 10000 connections, hold 60 s)
 *
 * At most 64 connections are being set up at once (kind to small backlogs).
 * When all N are established it prints "ready conns=N seconds=S" and holds them
 * until it gets SIGTERM or HOLD_S passes. If they cannot
 * all be set up within 120 s it prints "error: ..." and exits 1.
 * Build: cc -O2 -o idle idle.c
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char REQ[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char BODY[] = "\r\n\r\nHello, World!\n";
#define INFLIGHT 64
#define SETUP_LIMIT 120.0

struct c { int fd, sent; size_t len; char buf[256]; };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [N] [HOLD_S]\n", argv[0]); return 2; }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  int n = argc > 2 ? atoi(argv[2]) : 10000;
  int hold = argc > 3 ? atoi(argv[3]) : 60;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)n + 16 > rl.rlim_cur) { printf("error: open file limit %lu < %d\n", (unsigned long)rl.rlim_cur, n + 16); return 1; }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct c *cs = calloc((size_t)n, sizeof *cs);
  int ep = epoll_create1(0);
  int next = 0, ready = 0, inflight = 0, retries = 0;
  double t0 = now();
  struct epoll_event evs[INFLIGHT];
  while (ready < n) {
    if (now() - t0 > SETUP_LIMIT) { printf("error: only %d of %d connections set up in %.0f s\n", ready, n, SETUP_LIMIT); return 1; }
    while (inflight < INFLIGHT && next < n) {
      struct c *c = &cs[next];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c->fd < 0) { printf("error: socket: %s after %d\n", strerror(errno), next); return 1; }
      if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        printf("error: connect: %s after %d\n", strerror(errno), next);
        return 1;
      }
      struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
      next++;
      inflight++;
    }
    int k = epoll_wait(ep, evs, INFLIGHT, 200);
    for (int i = 0; i < k; i++) {
      struct c *c = evs[i].data.ptr;
      int bad = 0;
      if (!c->sent) {
        if ((evs[i].events & (EPOLLERR | EPOLLHUP)) ||
            send(c->fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQ - 1)) bad = 1;
        else {
          c->sent = 1;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
          continue;
        }
      } else {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
        if (r <= 0) {
          if (r < 0 && errno == EAGAIN) continue;
          bad = 1;
        } else {
          c->len += (size_t)r;
          size_t bl = sizeof BODY - 1;
          if (c->len >= bl && memcmp(c->buf + c->len - bl, BODY, bl) == 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            ready++;
            inflight--;
          } else if (c->len >= sizeof c->buf - 1) bad = 1;
          continue;
        }
      }
      if (bad) { /* retry this connection from scratch, a bounded number of times */
        if (++retries > 1000) { printf("error: too many failed connections (%d ready)\n", ready); return 1; }
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        c->sent = 0;
        c->len = 0;
        if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)) {
          printf("error: reconnect: %s\n", strerror(errno));
          return 1;
        }
        struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
      }
    }
  }
  printf("ready conns=%d seconds=%.3f retries=%d\n", n, now() - t0, retries);
  fflush(stdout);
  double t1 = now();
  while (now() - t1 < hold) sleep(1); /* SIGTERM ends it sooner */
  return 0;
}
