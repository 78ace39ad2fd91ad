/*
 * The operations that may have to wait: connect, accept, send, recv,
 * sendto, recvfrom. Each has one shape: try the call; when the kernel
 * says "not yet", csock_wait (block, or yield and come back through the
 * _k continuation) and try again.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core.h"

#define RECV_DEFAULT 65536 /* recv() and chunks() without a size */

static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  if (status != LUA_YIELD && (r = csock_wait(L, s, CSOCK_DIR_WRITE, 0, connect_k))) return r;
  return csock_result(L, csock_sys_connect_result(s->io.fd));
}

/* A unix listener with a full backlog answers EAGAIN, and nothing signals
 * when it has room: try again after a pause that grows (1 ms to 50 ms),
 * until the deadline. Stack: 1 socket, 2 the address bytes. */
static int unix_retry_k(lua_State *L, int status, lua_KContext pause_ms) {
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r; /* after a pause */
  size_t len;
  const char *sa = lua_tolstring(L, 2, &len);
  for (;;) {
    r = csock_sys_connect(s->io.fd, (const struct sockaddr *)sa, (socklen_t)len);
    if (r == -EINPROGRESS) {
      lua_settop(L, 1);
      return connect_k(L, LUA_OK, 0);
    }
    if (r != -EAGAIN) return csock_result(L, r);
    int64_t now = csock_sys_now(), deadline = csock_deadline(L, s);
    if (deadline >= 0 && now >= deadline) return csock_timeout(L);
    int64_t wake = now + (int64_t)pause_ms * 1000000;
    if (deadline >= 0 && wake > deadline) wake = deadline;
    pause_ms = pause_ms * 2 > 50 ? 50 : pause_ms * 2;
    if ((r = csock_pause(L, s, wake, pause_ms, unix_retry_k))) return r;
  }
}

/* The operation's deadline was set (csock_begin) before any lookup: one
 * timeout covers the name and the connection. */
static int start_connect(lua_State *L, csock_Socket *s, const csock_Addr *a) {
  if (!csock_isopen(s)) return csock_closed(L); /* by another task, during a lookup */
  int r = csock_sys_connect(s->io.fd, (const struct sockaddr *)&a->ss, a->len);
  if (r == -EAGAIN && s->family == AF_UNIX) {
    lua_settop(L, 1);
    lua_pushlstring(L, (const char *)&a->ss, a->len);
    return unix_retry_k(L, LUA_OK, 1);
  }
  if (r != -EINPROGRESS) return csock_result(L, r);
  lua_settop(L, 1);
  return connect_k(L, LUA_OK, 0);
}

static int connect_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Addr a;
  int n = csock_getaddr_resumed(L, ctx, &a);
  if (n) return n;
  return start_connect(L, csock_keptsocket(L, 1), &a);
}

static int l_connect(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  csock_begin(L, s, CSOCK_DIR_WRITE);
  csock_Addr a;
  int n = csock_getaddr(L, s, 2, &a, connect_resolved_k);
  if (n) return n;
  return start_connect(L, s, &a);
}

/* Stack: 1 listener, 2 the new socket, still closed until accept fills it. */
static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = csock_sys_accept(s->io.fd, (struct sockaddr *)&ss, &len);
    if (fd >= 0) {
      csock_Socket *c = csock_keptsocket(L, 2);
      c->io.fd = fd;
      c->lingers = s->lingers; /* SO_LINGER is inherited */
      csock_progress(s);
      return 1 + csock_pushaddr(L, (struct sockaddr *)&ss, len);
    }
    /* A connection that died in the backlog is not the listener's failure. */
    if (fd != -ECONNABORTED && !csock_sys_again(fd)) return csock_oserror(L, fd);
    if (fd == -ECONNABORTED) continue;
    if ((r = csock_wait(L, s, CSOCK_DIR_READ, 0, accept_k))) return r;
  }
}

static int l_accept(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_settop(L, 1);
  csock_newsocket(L, s->net, s->family, s->type, 0);
  csock_begin(L, s, CSOCK_DIR_READ);
  return accept_k(L, LUA_OK, 0);
}

static void byterange(lua_State *L, int idx, size_t len, size_t *from, size_t *count) {
  lua_Integer i = luaL_optinteger(L, idx, 1);
  lua_Integer j = luaL_optinteger(L, idx + 1, -1);
  lua_Integer n = (lua_Integer)len;
  /* string.sub's rules */
  if (i < 0) i = i < -n ? 1 : n + i + 1;
  else if (i == 0) i = 1;
  if (j < 0) j = j < -n ? 0 : n + j + 1;
  else if (j > n) j = n;
  *count = i > j ? 0 : (size_t)(j - i + 1);
  *from = i > n ? len : (size_t)(i - 1); /* never a pointer past the string */
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  size_t len, from, count;
  const char *data = lua_tolstring(L, 2, &len);
  byterange(L, 3, len, &from, &count);
  for (;;) {
    /* Output a task queued with write() goes first: bytes keep their order. */
    ssize_t n = csock_buf_len(&s->out) > 0 ? csock_output_flushnow(s) : 0;
    if (n == 0) n = s->tp->send(s, data + from, count);
    if (n >= 0) {
      csock_progress(s);
      lua_pushinteger(L, n);
      return 1;
    }
    if (!csock_sys_again((int)n)) return csock_oserror(L, (int)n);
    if ((r = csock_wait(L, s, CSOCK_DIR_WRITE, 0, send_k))) return r;
  }
}

static int l_send(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 4);
  csock_begin(L, s, CSOCK_DIR_WRITE);
  return send_k(L, LUA_OK, 0);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  size_t want = (size_t)lua_tointeger(L, 2);
  if (want > CSOCK_SCRATCH) want = CSOCK_SCRATCH;
  for (;;) {
    char *owned, *p = csock_recvspace(s, want, &owned);
    if (p == NULL) return csock_oserror(L, ENOMEM);
    ssize_t n = s->tp->recv(s, p, want);
    if (n > 0 || (n == 0 && (s->type == SOCK_DGRAM || want == 0))) {
      csock_progress(s);
      lua_pushlstring(L, p, (size_t)n);
      free(owned);
      return 1;
    }
    free(owned);
    if (n == 0) return csock_closed(L);
    if (!csock_sys_again((int)n)) return csock_oserror(L, (int)n);
    if ((r = csock_wait(L, s, CSOCK_DIR_READ, 0, recv_k))) return r;
  }
}

static int l_recv(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  size_t want = csock_optcount(L, 2, RECV_DEFAULT);
  size_t buffered = csock_buf_len(&s->in);
  if (want == 0 && s->type == SOCK_STREAM) { /* nothing asked: nothing to wait for */
    lua_pushliteral(L, "");
    return 1;
  }
  if (buffered > 0) { /* what read() left behind comes first */
    if (want > buffered) want = buffered;
    lua_pushlstring(L, csock_buf_head(&s->in), want);
    csock_buf_consume(&s->in, want);
    csock_buf_trim(&s->in, csock_pool(s));
    return 1;
  }
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)want);
  csock_begin(L, s, CSOCK_DIR_READ);
  return recv_k(L, LUA_OK, 0);
}

/* sock:chunks([n]): `for data in sock:chunks() do` runs once per recv,
 * ending at EOF or at the first failure, as lines does. */
static int chunks_next(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  return l_recv(L);
}

static int l_chunks(lua_State *L) {
  csock_checksocket(L, 1);
  size_t n = csock_optcount(L, 2, RECV_DEFAULT);
  luaL_argcheck(L, n > 0, 2, "chunk size must be positive");
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)n);
  lua_pushcclosure(L, chunks_next, 2);
  return 1;
}

/* Stack: 1 socket, 2 data, 3 the destination's sockaddr bytes. */
static int sendto_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  size_t len, salen;
  const char *data = lua_tolstring(L, 2, &len);
  const struct sockaddr *sa = (const struct sockaddr *)lua_tolstring(L, 3, &salen);
  for (;;) {
    ssize_t n = s->tp->sendto(s, data, len, sa, (socklen_t)salen);
    if (n >= 0) {
      csock_progress(s);
      lua_pushinteger(L, n);
      return 1;
    }
    if (!csock_sys_again((int)n)) return csock_oserror(L, (int)n);
    if ((r = csock_wait(L, s, CSOCK_DIR_WRITE, 0, sendto_k))) return r;
  }
}

static int start_sendto(lua_State *L, csock_Socket *s, const csock_Addr *a) {
  if (!csock_isopen(s)) return csock_closed(L); /* by another task, during a lookup */
  lua_settop(L, 2);
  lua_pushlstring(L, (const char *)&a->ss, a->len);
  return sendto_k(L, LUA_OK, 0);
}

static int sendto_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Addr a;
  int n = csock_getaddr_resumed(L, ctx, &a);
  if (n) return n;
  return start_sendto(L, csock_keptsocket(L, 1), &a);
}

static int l_sendto(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  luaL_checkstring(L, 2);
  csock_begin(L, s, CSOCK_DIR_WRITE); /* one deadline for the lookup and the send */
  csock_Addr a;
  int n = csock_getaddr(L, s, 3, &a, sendto_resolved_k);
  if (n) return n;
  return start_sendto(L, s, &a);
}

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  size_t want = (size_t)lua_tointeger(L, 2);
  if (want > CSOCK_SCRATCH) want = CSOCK_SCRATCH;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char *owned, *p = csock_recvspace(s, want, &owned);
    if (p == NULL) return csock_oserror(L, ENOMEM);
    ssize_t n = s->tp->recvfrom(s, p, want, (struct sockaddr *)&ss, &sslen);
    if (n >= 0) {
      csock_progress(s);
      lua_pushlstring(L, p, (size_t)n);
    }
    free(owned);
    if (n == 0 && s->type == SOCK_STREAM && want > 0) return csock_closed(L);
    if (n >= 0) {
      if (sslen == 0) return 1; /* a stream socket has no sender address */
      return 1 + csock_pushaddr(L, (struct sockaddr *)&ss, sslen);
    }
    if (!csock_sys_again((int)n)) return csock_oserror(L, (int)n);
    if ((r = csock_wait(L, s, CSOCK_DIR_READ, 0, recvfrom_k))) return r;
  }
}

static int l_recvfrom(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  size_t want = csock_optcount(L, 2, RECV_DEFAULT);
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)want);
  csock_begin(L, s, CSOCK_DIR_READ);
  return recvfrom_k(L, LUA_OK, 0);
}

static const luaL_Reg methods[] = {
  {"connect", l_connect},
  {"accept", l_accept},
  {"send", l_send},
  {"recv", l_recv},
  {"chunks", l_chunks},
  {"sendto", l_sendto},
  {"recvfrom", l_recvfrom},
  {NULL, NULL},
};

void csock_open_transfer(lua_State *L) {
  luaL_setfuncs(L, methods, 0);
}
