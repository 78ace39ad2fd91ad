/*
 * The poll(2) backend, for systems without epoll (and to keep the loop
 * honest: the whole spec runs on both). Level-triggered, so it watches
 * exactly what waiters want. Slots are packed: removing one moves the last
 * into its place.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "poller.h"

struct csock_Poller {
  struct pollfd *fds;
  csock_Io **watches;
  int n, cap;
};

static csock_Poller *pl_create(int *err) {
  csock_Poller *p = calloc(1, sizeof *p);
  if (p == NULL) *err = ENOMEM;
  return p;
}

static void pl_destroy(csock_Poller *p) {
  free(p->fds);
  free(p->watches);
  free(p);
}

static short events_of(int want) {
  return (short)(((want & CSOCK_WANT_READ) ? POLLIN : 0) | ((want & CSOCK_WANT_WRITE) ? POLLOUT : 0));
}

static void pl_forget(csock_Poller *p, csock_Io *w) {
  if (!w->watched) return;
  int last = --p->n;
  if ((int)w->slot != last) {
    p->fds[w->slot] = p->fds[last];
    p->watches[w->slot] = p->watches[last];
    p->watches[w->slot]->slot = w->slot;
  }
  w->watched = 0;
}

static int pl_watch(csock_Poller *p, csock_Io *w, int want) {
  if (want == 0) {
    pl_forget(p, w);
    return 0;
  }
  if (!w->watched) {
    if (p->n == p->cap) {
      int cap = p->cap ? p->cap * 2 : 64;
      struct pollfd *fds = realloc(p->fds, sizeof *fds * (size_t)cap);
      if (fds == NULL) return -ENOMEM;
      p->fds = fds;
      csock_Io **watches = realloc(p->watches, sizeof *watches * (size_t)cap);
      if (watches == NULL) return -ENOMEM;
      p->watches = watches;
      p->cap = cap;
    }
    w->slot = (unsigned)p->n++;
    p->watches[w->slot] = w;
    p->fds[w->slot].fd = w->fd;
  }
  p->fds[w->slot].events = events_of(want);
  w->watched = want;
  return 0;
}

static int pl_wait(csock_Poller *p, csock_Ready *out, int max, int timeout_ms) {
  int n = poll(p->fds, (nfds_t)p->n, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int got = 0;
  for (int i = 0; i < p->n && got < max && n > 0; i++) {
    short re = p->fds[i].revents;
    if (re == 0) continue;
    n--;
    out[got].io = p->watches[i];
    out[got].events = 0;
    if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) out[got].events |= CSOCK_WANT_READ;
    if (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) out[got].events |= CSOCK_WANT_WRITE;
    if (re & (POLLHUP | POLLERR | POLLNVAL)) out[got].events |= CSOCK_EVENT_HUP;
    got++;
  }
  return got;
}

static int pl_fd(csock_Poller *p) {
  (void)p;
  return -1;
}

const csock_PollerOps csock_poll_ops = {
  "poll", pl_create, pl_destroy, pl_watch, pl_forget, pl_wait, pl_fd,
};

const csock_PollerOps *csock_poller_find(const char *name) {
#ifdef __linux__
  if (name == NULL || strcmp(name, "epoll") == 0) return &csock_epoll_ops;
#else
  if (name == NULL) return &csock_poll_ops;
#endif
  if (strcmp(name, "poll") == 0) return &csock_poll_ops;
  return NULL;
}
