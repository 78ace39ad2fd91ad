/* Orphans (see orphans.h). No Lua here. */
#include <stdlib.h>
#include <string.h>

#include "socket.h"

struct csock_Orphan {
  csock_Socket s;         /* a copy of the closed socket: fd, transport, output */
  csock_Timer timer;      /* giving up */
  csock_Orphans *home;
  csock_Orphan *next, **prev;
};

void csock_closefd(int fd, int lingers) {
  if (lingers) csock_sys_close_nolinger(fd); /* close() never blocks */
  else csock_sys_close(fd);
}

static void end(csock_Orphan *o) {
  csock_Engine *e = o->home->engine;
  csock_engine_forget(e, &o->s.io);
  csock_engine_canceltimer(e, &o->timer);
  o->s.tp->close(&o->s);
  csock_closefd(o->s.io.fd, o->s.lingers);
  csock_buf_release(&o->s.out, csock_pool(&o->s));
  *o->prev = o->next;
  if (o->next) o->next->prev = o->prev;
  o->home->count--;
  csock_engine_ref(e, -1);
  free(o);
}

/* Writable, or the peer failed: send the rest; done unless the kernel is full again. */
static void ready(csock_Io *io, int events) {
  (void)events;
  csock_Orphan *o = (csock_Orphan *)io; /* its socket, whose io is first */
  int r = csock_output_flushnow(&o->s);
  if (r < 0 && csock_sys_again(r)) return;
  end(o);
}

static void gave_up(csock_Timer *t) {
  end((csock_Orphan *)((char *)t - offsetof(csock_Orphan, timer)));
}

int csock_orphans_adopt(csock_Orphans *os, csock_Socket *s) {
  csock_Engine *e = os->engine;
  if (csock_engine_closed(e)) return 0;
  csock_Orphan *o = calloc(1, sizeof *o);
  if (o == NULL) return 0;
  o->s = *s;
  o->s.io.watched = 0;
  o->s.io.ready = ready;
  o->s.flushing = 0;
  o->s.waiters[0] = o->s.waiters[1] = NULL;
  o->s.dirty_next = NULL;
  o->s.dirty_prev = NULL;
  memset(&o->s.in, 0, sizeof o->s.in);
  csock_timer_init(&o->timer, gave_up);
  csock_engine_forget(e, &s->io);
  if (csock_engine_watch(e, &o->s.io, CSOCK_WANT_WRITE) < 0 ||
      csock_engine_settimer(e, &o->timer, csock_sys_now() + (int64_t)CSOCK_ORPHAN_SECONDS * 1000000000) < 0) {
    csock_engine_forget(e, &o->s.io);
    free(o);
    return 0;
  }
  memset(&s->out, 0, sizeof s->out); /* the orphan's now */
  s->io.fd = -1;
  o->home = os;
  o->next = os->list;
  if (o->next) o->next->prev = &o->next;
  o->prev = &os->list;
  os->list = o;
  os->count++;
  csock_engine_ref(e, 1);
  return 1;
}

static void close_all(csock_Hook *h, int phase) {
  (void)phase;
  csock_Orphans *os = (csock_Orphans *)h; /* the hook is first */
  while (os->list) end(os->list);
}

void csock_orphans_init(csock_Orphans *os, csock_Engine *e) {
  os->engine = e;
  os->list = NULL;
  os->count = 0;
  csock_engine_hook(e, &os->hook, CSOCK_HOOK_CLOSE, close_all);
}
