/* Name lookups on helper threads (see resolver.h). No Lua here. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "resolver.h"

/* Under r->lock: a lookup not started yet. */
static csock_Lookup *take_pending(csock_Resolver *r) {
  csock_Lookup *lk = r->pending;
  if (lk) r->pending = lk->next;
  return lk;
}

static void *worker(void *arg) {
  csock_Resolver *r = (csock_Resolver *)arg;
  pthread_mutex_lock(&r->lock);
  csock_Lookup *lk;
  while ((lk = take_pending(r)) != NULL) {
    pthread_mutex_unlock(&r->lock);
    lk->rc = csock_addr_resolve(lk->host, lk->port, lk->family, lk->socktype, lk->addrs,
                                CSOCK_LOOKUP_MAX, &lk->count);
    lk->err = errno;
    pthread_mutex_lock(&r->lock);
    lk->next = r->resolved;
    r->resolved = lk;
    uint64_t one = 1; /* under the lock: the loop cannot close the fd meanwhile */
    ssize_t n = write(r->wakeup.fd, &one, sizeof one);
    (void)n; /* a full counter already means "wake up" */
  }
  if (--r->threads == 0) pthread_cond_signal(&r->idle);
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* The eventfd is readable: hand every finished lookup back to its owner. */
static void collect(csock_Resolver *r) {
  uint64_t count;
  ssize_t n = read(r->wakeup.fd, &count, sizeof count);
  (void)n;
  pthread_mutex_lock(&r->lock);
  csock_Lookup *lk = r->resolved;
  r->resolved = NULL;
  pthread_mutex_unlock(&r->lock);
  while (lk) {
    csock_Lookup *next = lk->next;
    lk->finished = 1;
    if (lk->abandoned) free(lk);
    else if (lk->done) lk->done(lk);
    lk = next;
  }
}

static void wakeup_ready(csock_Io *io, int events) {
  (void)events;
  collect((csock_Resolver *)((char *)io - offsetof(csock_Resolver, wakeup)));
}

/* The engine watches the eventfd once it polls at all: a script that only
 * makes blocking lookups never needs a poller for it. 0 or -errno. */
static int watch(csock_Resolver *r) {
  if (r->wakeup.fd >= 0 && !r->wakeup.watched && r->engine->poller)
    return csock_engine_watch(r->engine, &r->wakeup, CSOCK_WANT_READ);
  return 0;
}

csock_Lookup *csock_lookup_start(csock_Resolver *r, const char *host, int port, int family,
                                 int socktype, void (*done)(csock_Lookup *)) {
  if (r->wakeup.fd < 0) { /* the threads' only way to say "done" */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return NULL;
    r->wakeup.fd = fd;
  }
  if (watch(r) < 0) return NULL; /* nothing would tell the loop it is done */
  size_t len = strlen(host);
  csock_Lookup *lk = calloc(1, sizeof *lk + len + 1);
  if (lk == NULL) return NULL;
  memcpy(lk->host, host, len + 1);
  lk->resolver = r;
  lk->done = done;
  lk->port = port;
  lk->family = family;
  lk->socktype = socktype;
  pthread_mutex_lock(&r->lock);
  csock_Lookup **tail = &r->pending;
  while (*tail) tail = &(*tail)->next;
  *tail = lk;
  int ok = 1;
  if (r->threads < CSOCK_RESOLVER_THREADS) {
    if (csock_sys_thread(worker, r, 256 * 1024) == 0) r->threads++;
    else ok = r->threads > 0; /* a running worker will get to it */
  }
  if (!ok) { /* no thread at all: take it back */
    *tail = NULL;
    free(lk);
    lk = NULL;
  }
  pthread_mutex_unlock(&r->lock);
  return lk;
}

int csock_lookup_wait(csock_Lookup *lk, int64_t deadline) {
  csock_Resolver *r = lk->resolver;
  while (!lk->finished) {
    int w = csock_sys_wait(r->wakeup.fd, CSOCK_WANT_READ, deadline);
    if (w > 0) {
      collect(r); /* marks ours finished, hands the others back */
    } else {
      csock_lookup_release(lk);
      return w;
    }
  }
  return 1;
}

void csock_lookup_release(csock_Lookup *lk) {
  if (lk->finished) free(lk);
  else lk->abandoned = 1; /* freed when its thread hands it back */
}

static void free_list(csock_Lookup *lk) {
  while (lk) {
    csock_Lookup *next = lk->next;
    free(lk);
    lk = next;
  }
}

static void on_phase(csock_Hook *h, int phase) {
  csock_Resolver *r = (csock_Resolver *)h; /* the hook is first */
  if (phase == CSOCK_HOOK_ENTER) {
    (void)watch(r); /* failing, a task's lookup is done in place (csock_lookup_start) */
    return;
  }
  pthread_mutex_lock(&r->lock);
  free_list(r->pending); /* not started: nobody will */
  r->pending = NULL;
  while (r->threads > 0) pthread_cond_wait(&r->idle, &r->lock);
  free_list(r->resolved);
  r->resolved = NULL;
  pthread_mutex_unlock(&r->lock);
  if (r->wakeup.fd >= 0) {
    csock_engine_forget(r->engine, &r->wakeup);
    close(r->wakeup.fd);
    r->wakeup.fd = -1;
  }
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->idle);
}

void csock_resolver_init(csock_Resolver *r, csock_Engine *e) {
  memset(r, 0, sizeof *r);
  r->engine = e;
  r->wakeup.fd = -1;
  r->wakeup.ready = wakeup_ready;
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->idle, NULL);
  csock_engine_hook(e, &r->hook, CSOCK_HOOK_ENTER | CSOCK_HOOK_CLOSE, on_phase);
}
