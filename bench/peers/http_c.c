/* Plain C baseline: one thread, level-triggered epoll, non-blocking sockets.
 *
 *   http_c PORT          keep-alive HTTP/1.1, the same fixed response as
 *                        examples/http_hello.lua (honours Connection: close and
 *                        Content-Length bodies; pipelined requests answered in
 *                        one write per read)
 *   http_c PORT echo     echo server (writes back every byte it reads, with
 *                        backpressure: stops reading while output is pending)
 *
 * Build: cc -O2 -o http_c http_c.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY "Hello, World!\n"
static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\n" BODY;
#define RESPONSE_LEN (sizeof(RESPONSE) - 1)
#define MAX_REQUEST (1024 * 1024) /* like csock's default read limit */

struct conn {
  int fd;
  char *in;           /* unparsed input (only when a request is split) */
  size_t inlen, incap;
  size_t skip;        /* body bytes still to discard */
  char *out;          /* output the kernel has not taken yet */
  size_t outlen, outoff, outcap;
  int closing;        /* close once output is written */
  uint32_t events;    /* what epoll watches now */
};

static int epfd;
static int echo_mode;
static char rbuf[256 * 1024];
static char wbuf[256 * 1024];

static void die(const char *what) { perror(what); exit(1); }

static void conn_free(struct conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

static int append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < *len + n) ncap *= 2;
    char *p = realloc(*buf, ncap);
    if (!p) return -1;
    *buf = p;
    *cap = ncap;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  return 0;
}

/* Changes the interest set only when it must (a syscall per request
 * otherwise: not what a hand-written server does). */
static void set_events(struct conn *c, uint32_t ev) {
  if (c->events == ev) return;
  c->events = ev;
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* Send data (pending output first). Returns -1 if the connection is dead. */
static int send_out(struct conn *c, const char *data, size_t n) {
  if (c->outlen > c->outoff) {
    if (n && append(&c->out, &c->outlen, &c->outcap, data, n) < 0) return -1;
    data = NULL;
    n = 0;
  }
  if (c->outlen > c->outoff) {
    while (c->outoff < c->outlen) {
      ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return -1;
      }
      c->outoff += (size_t)w;
    }
    if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
  }
  while (n) {
    ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    data += w;
    n -= (size_t)w;
  }
  if (n && append(&c->out, &c->outlen, &c->outcap, data, n) < 0) return -1;
  /* backpressure: while output is pending, wait for EPOLLOUT and read nothing */
  set_events(c, c->outlen > c->outoff ? EPOLLOUT : EPOLLIN);
  return 0;
}

/* Parse as many complete requests as buf holds; append responses to wbuf.
 * Returns bytes consumed; sets *close_after for Connection: close; -1 on garbage. */
static long parse_http(struct conn *c, const char *buf, size_t len, size_t *wlen, int *close_after) {
  size_t pos = 0;
  while (pos < len) {
    if (c->skip) {
      size_t k = len - pos < c->skip ? len - pos : c->skip;
      pos += k;
      c->skip -= k;
      if (c->skip) break;
      continue;
    }
    const char *start = buf + pos;
    const char *end = memmem(start, len - pos, "\r\n\r\n", 4);
    if (!end) break;
    size_t reqlen = (size_t)(end - start) + 4;
    /* headers: one per line after the request line */
    long length = 0;
    int close = 0;
    const char *line = memchr(start, '\n', reqlen);
    while (line && line + 1 < end) {
      const char *h = line + 1;
      const char *eol = memchr(h, '\n', (size_t)(end + 2 - h));
      if (!eol) break;
      size_t hl = (size_t)(eol - h);
      if (hl > 15 && strncasecmp(h, "content-length:", 15) == 0)
        length = strtol(h + 15, NULL, 10);
      else if (hl > 11 && strncasecmp(h, "connection:", 11) == 0) {
        const char *v = h + 11;
        while (*v == ' ' || *v == '\t') v++;
        if (strncasecmp(v, "close", 5) == 0) close = 1;
      }
      line = eol;
    }
    pos += reqlen;
    if (length > 0) c->skip = (size_t)length;
    if (*wlen + RESPONSE_LEN > sizeof wbuf) { /* flush a big pipelined batch */
      if (send_out(c, wbuf, *wlen) < 0) return -1;
      *wlen = 0;
    }
    memcpy(wbuf + *wlen, RESPONSE, RESPONSE_LEN);
    *wlen += RESPONSE_LEN;
    if (close) { *close_after = 1; return (long)len; }
  }
  return (long)pos;
}

static void on_readable(struct conn *c) {
  for (int loops = 0; loops < 16; loops++) {
    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      conn_free(c);
      return;
    }
    if (r == 0) { conn_free(c); return; }
    if (echo_mode) {
      if (send_out(c, rbuf, (size_t)r) < 0) { conn_free(c); return; }
      if (c->outlen > c->outoff) return; /* backpressure */
      continue;
    }
    const char *buf = rbuf;
    size_t len = (size_t)r;
    if (c->inlen) {
      if (c->inlen + len > MAX_REQUEST ||
          append(&c->in, &c->inlen, &c->incap, rbuf, len) < 0) { conn_free(c); return; }
      buf = c->in;
      len = c->inlen;
    }
    size_t wlen = 0;
    int close_after = 0;
    long used = parse_http(c, buf, len, &wlen, &close_after);
    if (used < 0 || (wlen && send_out(c, wbuf, wlen) < 0)) { conn_free(c); return; }
    if (close_after) {
      if (c->outlen > c->outoff) c->closing = 1; else conn_free(c);
      return;
    }
    size_t rest = len - (size_t)used;
    if (c->inlen) {
      memmove(c->in, c->in + used, rest);
      c->inlen = rest;
    } else if (rest) {
      if (append(&c->in, &c->inlen, &c->incap, buf + used, rest) < 0) { conn_free(c); return; }
    }
    if (c->inlen == 0 && c->incap > 65536) { free(c->in); c->in = NULL; c->incap = 0; }
    if (c->outlen > c->outoff) return;
    if ((size_t)r < sizeof rbuf) return; /* drained */
  }
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [http|echo]\n", argv[0]); return 2; }
  int port = atoi(argv[1]);
  echo_mode = argc > 2 && strcmp(argv[2], "echo") == 0;
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(ls, 511) < 0) die("listen");
  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");
  struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &le);
  printf("%s on port %d\n", echo_mode ? "C echo" : "C HTTP", port);
  fflush(stdout);
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(epfd, evs, 512, -1);
    if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        for (int k = 0; k < 64; k++) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break; /* EAGAIN, or EMFILE: try again on the next wakeup */
          struct conn *nc = calloc(1, sizeof *nc);
          if (!nc) { close(fd); continue; }
          nc->fd = fd;
          nc->events = EPOLLIN;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        if (send_out(c, NULL, 0) < 0) { conn_free(c); continue; }
        if (c->outlen > c->outoff) continue;
        if (c->closing) { conn_free(c); continue; }
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}
