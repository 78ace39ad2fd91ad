/*
 * Waiting for a socket: the single point every blocking operation passes
 * through when the kernel says "not yet". Outside the loop it blocks in
 * poll(2) until the socket is ready or the operation's deadline passes.
 */
#include "core.h"

static int64_t deadline_of(csock_Socket *s, int dir) {
  if (s->deadline[dir] == CSOCK_UNSET_DEADLINE) /* first wait of this operation */
    s->deadline[dir] = s->timeout < 0 ? CSOCK_NO_DEADLINE : csock_sys_now() + s->timeout;
  return s->deadline[dir];
}

int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k) {
  (void)ctx;
  (void)k; /* the loop resumes through k; blocking needs no continuation */
  int want = dir == CSOCK_DIR_READ ? CSOCK_WANT_READ : CSOCK_WANT_WRITE;
  int r = csock_sys_wait(s->fd, want, deadline_of(s, dir));
  if (r > 0) return 0;
  if (r == 0) return csock_timeout(L);
  return csock_oserror(L, r);
}

int csock_resumed(lua_State *L) {
  (void)L;
  return 0;
}
