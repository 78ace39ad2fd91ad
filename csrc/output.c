/* Coalesced output (see output.h). No Lua here. */
#include <errno.h>
#include <string.h>

#include "socket.h"

void csock_output_markdirty(csock_Socket *s) {
  csock_Output *q = &s->net->output;
  if (s->dirty_prev) return;
  s->dirty_next = q->dirty;
  if (q->dirty) q->dirty->dirty_prev = &s->dirty_next;
  s->dirty_prev = &q->dirty;
  q->dirty = s;
  q->hook.due = 1; /* a host driving the loop must step before it sleeps */
}

void csock_output_unmark(csock_Socket *s) {
  if (s->dirty_prev == NULL) return;
  *s->dirty_prev = s->dirty_next;
  if (s->dirty_next) s->dirty_next->dirty_prev = s->dirty_prev;
  s->dirty_next = NULL;
  s->dirty_prev = NULL;
}

int csock_output_flushnow(csock_Socket *s) {
  while (csock_buf_len(&s->out) > 0) {
    ssize_t n = s->tp->send(s, csock_buf_head(&s->out), csock_buf_len(&s->out));
    if (n < 0) return (int)n;
    csock_buf_consume(&s->out, (size_t)n);
  }
  if (s->shut_after_flush) {
    s->tp->shutdown(s, s->shut_after_flush - 1);
    s->shut_after_flush = 0;
  }
  return 0;
}

void csock_output_fail(csock_Socket *s, int err) {
  s->out_err = (uint16_t)err;
  csock_buf_release(&s->out, csock_pool(s));
}

ssize_t csock_output_sendqueue(csock_Socket *s, const struct iovec *iov, int n, size_t most) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  ssize_t sent = s->tp->sendv(s, iov, n);
  if (sent < 0 && !csock_sys_again((int)sent)) return sent;
  if (sent < 0) sent = 0;
  size_t rest = total - (size_t)sent, skip = (size_t)sent, avail;
  if (rest == 0 || rest > most) return sent;
  char *p = csock_buf_reserve(&s->out, rest, &avail, csock_pool(s));
  if (p == NULL) return sent;
  for (int i = 0; i < n; i++, skip = 0) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    memcpy(p, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    p += iov[i].iov_len - skip;
  }
  csock_buf_commit(&s->out, rest);
  csock_output_markdirty(s); /* whatever the caller does next, the queue sends it */
  return (ssize_t)total;
}

/* One socket's turn: all sent, waiting for room, or failed. */
static void flush_socket(csock_Output *q, csock_Socket *s) {
  int r = csock_output_flushnow(s);
  int was = s->flushing;
  s->flushing = r < 0 && csock_sys_again(r); /* the rest goes when the kernel has room */
  if (r < 0 && !s->flushing) csock_output_fail(s, -r);
  if (r == 0) csock_buf_trim(&s->out, csock_pool(s));
  if (was == s->flushing) return;
  csock_engine_ref(q->engine, s->flushing ? 1 : -1); /* output to send keeps the loop going */
  if ((r = csock_socket_rewatch(s)) < 0 && s->flushing) { /* cannot wait for room: give up */
    s->flushing = 0;
    csock_engine_ref(q->engine, -1);
    csock_output_fail(s, -r);
  }
}

static void flush_queue(csock_Hook *h, int phase) {
  (void)phase;
  csock_Output *q = (csock_Output *)h; /* the hook is the queue's first member */
  while (q->dirty) {
    csock_Socket *s = q->dirty;
    csock_output_unmark(s);
    flush_socket(q, s);
  }
  q->hook.due = 0;
}

void csock_output_init(csock_Output *q, csock_Engine *e) {
  q->engine = e;
  q->dirty = NULL;
  csock_engine_hook(e, &q->hook, CSOCK_HOOK_BEFOREPOLL, flush_queue);
}
