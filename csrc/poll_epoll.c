/*
 * The epoll backend. Each fd is registered once, for both directions,
 * edge-triggered: an interest change costs no syscall, and the loop never
 * misses an edge because every operation tries its syscall before waiting.
 */
#ifdef __linux__
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "poller.h"

struct csock_Poller {
  int epfd;
  int cap;
  struct epoll_event *events;
};

static csock_Poller *ep_create(int *err) {
  csock_Poller *p = calloc(1, sizeof *p);
  if (p == NULL) return *err = ENOMEM, NULL;
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p->epfd < 0) {
    *err = errno;
    free(p);
    return NULL;
  }
  return p;
}

static void ep_destroy(csock_Poller *p) {
  close(p->epfd);
  free(p->events);
  free(p);
}

static int ep_watch(csock_Poller *p, csock_Io *w, int want) {
  if (want == 0 || w->watched) return 0; /* already reports both directions */
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = w;
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0) return -errno;
  w->watched = CSOCK_WANT_READ | CSOCK_WANT_WRITE;
  return 0;
}

static void ep_forget(csock_Poller *p, csock_Io *w) {
  /* Explicit, because a forked child may hold the same open file. */
  if (w->watched) epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL);
  w->watched = 0;
}

static int ep_wait(csock_Poller *p, csock_Ready *out, int max, int timeout_ms) {
  if (p->cap < max) {
    struct epoll_event *events = realloc(p->events, sizeof *events * (size_t)max);
    if (events == NULL) return -ENOMEM;
    p->events = events;
    p->cap = max;
  }
  int n = epoll_wait(p->epfd, p->events, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    uint32_t e = p->events[i].events;
    out[i].io = p->events[i].data.ptr;
    out[i].events = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) out[i].events |= CSOCK_WANT_READ;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) out[i].events |= CSOCK_WANT_WRITE;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) out[i].events |= CSOCK_EVENT_HUP;
  }
  return n;
}

static int ep_fd(csock_Poller *p) { return p->epfd; }

const csock_PollerOps csock_epoll_ops = {
  "epoll", ep_create, ep_destroy, ep_watch, ep_forget, ep_wait, ep_fd,
};
#endif
