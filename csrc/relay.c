/*
 * sock:copyto(dst [, n]): what sock receives goes to dst, in C, until the
 * stream ends (or n bytes): an echo server, a TCP proxy's two directions,
 * a body relayed by length. Bytes land in the scratch space and go
 * straight back out; only what dst cannot take yet is kept (in dst's
 * output queue, which is then drained before the next receive), so a relay
 * holds no memory while it waits for input and at most one receive's worth
 * while its destination is slow. Both ends go through their transports.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "core.h"

/* ctx: bytes copied so far. Stack: 1 src, 2 dst, 3 n (or nil). */
static int copy_k(lua_State *L, int status, lua_KContext ctx);

/* A failure: nil, message, errno (pushed by the caller) and the count. */
static int failed(lua_State *L, int nres, lua_KContext copied) {
  lua_pushinteger(L, (lua_Integer)copied);
  return nres + 1;
}

static int waitfor(lua_State *L, csock_Socket *s, int dir, lua_KContext copied) {
  int r = csock_wait(L, s, dir, copied, copy_k);
  return r ? failed(L, r, copied) : 0;
}

/* Bytes moved: the waits' deadlines start again. A relay that keeps
 * moving never times out; one that moves nothing for longer than the
 * timeout does, however often its sockets are reported ready. */
static void moved(lua_State *L, csock_Socket *src, csock_Socket *dst) {
  csock_begin(L, src, CSOCK_DIR_READ);
  csock_begin(L, dst, CSOCK_DIR_WRITE);
  csock_progress(src);
  csock_progress(dst);
}

/* Sends p[0..n) to dst now; what the kernel does not take is queued in
 * dst's output. 0, or -errno. */
static int pass(csock_Socket *dst, const char *p, size_t n) {
  struct iovec iov = {(void *)p, n};
  ssize_t r = csock_output_sendqueue(dst, &iov, 1, (size_t)-1);
  return r < 0 ? (int)r : (size_t)r < n ? -ENOMEM : 0;
}

static int copy_k(lua_State *L, int status, lua_KContext ctx) {
  lua_KContext copied = ctx;
  int r;
  csock_Socket *src = csock_keptsocket(L, 1);
  csock_Socket *dst = csock_keptsocket(L, 2);
  if (status == LUA_YIELD && (r = csock_resumed(L, src))) return failed(L, r, copied);
  lua_Integer limit = lua_isnil(L, 3) ? -1 : lua_tointeger(L, 3);
  for (;;) {
    if (!csock_isopen(src) || !csock_isopen(dst)) return failed(L, csock_closed(L), copied); /* by another task */
    if (dst->out_err) return failed(L, csock_oserror(L, dst->out_err), copied);
    size_t queued = csock_buf_len(&dst->out);
    if (queued > 0) { /* what dst could not take first */
      r = csock_output_flushnow(dst);
      if (r < 0 && !csock_sys_again(r)) {
        csock_output_fail(dst, EPIPE); /* as write: later writes say "closed" */
        return failed(L, csock_oserror(L, r), copied);
      }
      if (csock_buf_len(&dst->out) < queued) moved(L, src, dst);
      if (r < 0) {
        if ((r = waitfor(L, dst, CSOCK_DIR_WRITE, copied))) return r;
        continue;
      }
    }
    size_t want = CSOCK_SCRATCH;
    if (limit >= 0) {
      if ((lua_Integer)copied >= limit) break;
      if ((lua_Unsigned)(limit - copied) < want) want = (size_t)(limit - copied);
    }
    size_t buffered = csock_buf_len(&src->in);
    if (buffered > 0) { /* what read() left behind goes first */
      size_t n = buffered < want ? buffered : want;
      if ((r = pass(dst, csock_buf_head(&src->in), n)) < 0) return failed(L, csock_oserror(L, -r), copied);
      csock_buf_consume(&src->in, n);
      csock_buf_trim(&src->in, csock_pool(src));
      copied += (lua_KContext)n;
      moved(L, src, dst);
      continue;
    }
    char *owned, *p = csock_recvspace(src, want, &owned);
    if (p == NULL) return failed(L, csock_oserror(L, ENOMEM), copied);
    ssize_t n = src->tp->recv(src, p, want);
    if (n > 0) {
      r = pass(dst, p, (size_t)n);
      free(owned);
      if (r < 0) return failed(L, csock_oserror(L, -r), copied);
      copied += (lua_KContext)n;
      moved(L, src, dst);
      continue;
    }
    free(owned);
    if (n == 0) break; /* the stream ended */
    if (!csock_sys_again((int)n)) return failed(L, csock_oserror(L, (int)n), copied);
    if ((r = waitfor(L, src, CSOCK_DIR_READ, copied))) return r;
  }
  lua_pushinteger(L, (lua_Integer)copied);
  return 1;
}

static int l_copyto(lua_State *L) {
  csock_Socket *src = csock_checksocket(L, 1);
  csock_Socket *dst = csock_checksocket(L, 2);
  luaL_argcheck(L, src->type == SOCK_STREAM, 1, "stream socket expected");
  luaL_argcheck(L, dst->type == SOCK_STREAM, 2, "stream socket expected");
  if (!lua_isnoneornil(L, 3)) luaL_argcheck(L, luaL_checkinteger(L, 3) >= 0, 3, "count must not be negative");
  lua_settop(L, 3);
  moved(L, src, dst); /* the first deadlines */
  return copy_k(L, LUA_OK, 0);
}

void csock_open_relay(lua_State *L) {
  lua_pushcfunction(L, l_copyto);
  lua_setfield(L, -2, "copyto");
}
