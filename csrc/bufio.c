/*
 * io-style buffered reading and writing: read, lines, readuntil, write,
 * flush. Reads go through the socket's receive buffer (buffer.h), so a
 * timeout or an over-long line loses no byte. Writes in a task are
 * coalesced (output.h) when small, sent at once when large; elsewhere they
 * return once the transport has taken every byte.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "core.h"

#define WRITE_IOV 64     /* pieces per sendmsg */
#define WRITE_DIRECT_MIN 16384 /* a write this large goes to the kernel at once, uncopied */

enum { TRY_DONE, TRY_NEED, TRY_FAILED };

/* Reads the format at idx; raises for an invalid one. */
static int checkformat(lua_State *L, int idx, size_t *count) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0, idx, "count must not be negative");
    *count = (size_t)n;
    return CSOCK_FMT_COUNT;
  }
  const char *f = luaL_checkstring(L, idx);
  if (*f == '*') f++; /* Lua 5.1/LuaSocket style "*l" */
  switch (*f) {
    case 'l': return CSOCK_FMT_LINE;
    case 'L': return CSOCK_FMT_LINE_KEEP;
    case 'a': return CSOCK_FMT_ALL;
    default: return luaL_argerror(L, idx, "invalid format");
  }
}

/* Satisfies one format from the buffer if it can: pushes the value (DONE),
 * pushes a failure (FAILED), or asks for more bytes (NEED, *want set). */
static int try_format(lua_State *L, csock_Socket *s, int idx, size_t *want) {
  size_t count = 0, take, keep;
  int fmt = checkformat(L, idx, &count);
  switch (csock_buf_scan(&s->in, fmt, count, s->readlimit, s->eof, &take, &keep, want)) {
    case CSOCK_SCAN_DONE:
      lua_pushlstring(L, csock_buf_head(&s->in), keep);
      csock_buf_consume(&s->in, take);
      return TRY_DONE;
    case CSOCK_SCAN_NEED:
      return TRY_NEED;
    case CSOCK_SCAN_TOOLONG:
      csock_fail(L, "line too long");
      return TRY_FAILED;
    default:
      csock_closed(L);
      return TRY_FAILED;
  }
}

/* A read call on a socket with nothing buffered receives straight into the
 * scratch space; only the bytes it leaves unread move to a buffer of
 * the socket's own, when it returns or waits. A request that arrives whole
 * thus never allocates, and an idle connection holds no buffer. */
static void borrow(csock_Socket *s) {
  csock_Net *net = s->net;
  if (s->in.data != NULL || net->scratch_busy) return;
  char *space = csock_net_scratch(net);
  if (space == NULL) return; /* the read makes a buffer of its own */
  net->scratch_busy = 1; /* a __gc running meanwhile reads without it */
  s->in.data = space;
  s->in.cap = CSOCK_BORROW_MAX;
  s->in.start = s->in.end = s->in.scanned = 0;
  s->borrowed = 1;
}

static int giveback(csock_Socket *s) {
  if (!s->borrowed) return 0;
  csock_Buffer own = {0};
  size_t len = csock_buf_len(&s->in), avail;
  int r = 0;
  if (len > 0) {
    char *p = csock_buf_reserve(&own, len, &avail, csock_pool(s));
    if (p != NULL) {
      memcpy(p, csock_buf_head(&s->in), len);
      csock_buf_commit(&own, len);
      own.scanned = s->in.scanned;
    } else {
      r = -ENOMEM;
    }
  }
  s->in = own;
  s->borrowed = 0;
  s->net->scratch_busy = 0;
  return r;
}

/* One recv into the buffer: bytes read, 0 at EOF, or -errno. */
static ssize_t fill(csock_Socket *s, size_t want) {
  if (s->drained) return -EAGAIN; /* before borrowing for nothing */
  borrow(s);
  if (s->borrowed && s->in.cap - s->in.end < want && giveback(s) < 0) return -ENOMEM;
  size_t avail = s->in.cap - s->in.end;
  char *p = s->borrowed ? s->in.data + s->in.end : csock_buf_reserve(&s->in, want, &avail, csock_pool(s));
  if (p == NULL) return -ENOMEM;
  ssize_t n = s->tp->recv(s, p, avail);
  if (n > 0) csock_buf_commit(&s->in, (size_t)n);
  return n;
}

int csock_readmore(lua_State *L, csock_Socket *s, size_t want, lua_KContext ctx,
                   lua_KFunction k) {
  ssize_t n = fill(s, want);
  if (n > 0) {
    csock_progress(s);
    return 0;
  }
  if (n == 0) {
    if (s->type == SOCK_STREAM) s->eof = 1;
    return 0;
  }
  if (!csock_sys_again((int)n) || (n = giveback(s)) < 0) return csock_oserror(L, (int)n);
  return csock_wait(L, s, CSOCK_DIR_READ, ctx, k);
}

csock_Socket *csock_readresume(lua_State *L, int status, int *nres) {
  csock_Socket *s = csock_keptsocket(L, 1);
  *nres = status == LUA_YIELD ? csock_resumed(L, s) : 0;
  if (*nres != 0) return NULL;
  giveback(s); /* in case an earlier read raised while it had the scratch */
  return s;
}

int csock_readdone(lua_State *L, csock_Socket *s) {
  if (giveback(s) < 0) return csock_oserror(L, ENOMEM);
  csock_buf_trim(&s->in, csock_pool(s)); /* an idle connection holds no buffer */
  return 0;
}

/* The read engine shared by read and lines. Stack: 1 socket, 2..nf+1
 * formats, then the values read so far (kept across waits). Returns the
 * number of results: the values, then nil, message[, errno] on failure. */
static int doread(lua_State *L, int status, int nf, lua_KFunction k) {
  int base = nf + 1, r;
  csock_Socket *s = csock_readresume(L, status, &r);
  if (s == NULL) return lua_gettop(L) - base;
  while (lua_gettop(L) - base < nf) {
    size_t want;
    int st = try_format(L, s, 2 + lua_gettop(L) - base, &want);
    if (st == TRY_DONE) continue;
    if (st == TRY_FAILED || csock_readmore(L, s, want, nf, k)) break;
  }
  csock_readdone(L, s);
  return lua_gettop(L) - base;
}

static int read_k(lua_State *L, int status, lua_KContext nf) {
  return doread(L, status, (int)nf, read_k);
}

static int l_read(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  size_t unused;
  if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
  int nf = lua_gettop(L) - 1;
  luaL_checkstack(L, nf + 3, "too many formats"); /* a value each, then nil, message, errno */
  for (int i = 2; i <= nf + 1; i++) checkformat(L, i, &unused);
  csock_begin(L, s, CSOCK_DIR_READ);
  return read_k(L, LUA_OK, nf);
}

/* lines: the for loop ends at EOF and at any failure (timeout, reset):
 * the last call returns nil, message[, errno] for whoever asks. A server
 * reading lines thus ends a connection quietly when its peer goes away. */
static int lines_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  return doread(L, status, 1, lines_k);
}

static int lines_next(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  csock_begin(L, csock_checksocket(L, 1), CSOCK_DIR_READ);
  return lines_k(L, LUA_OK, 0);
}

static int l_lines(lua_State *L) {
  size_t unused;
  csock_checksocket(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "l");
  }
  checkformat(L, 2, &unused);
  lua_settop(L, 2);
  lua_pushcclosure(L, lines_next, 2);
  return 1;
}

/* readuntil: stack 1 socket, 2 delimiter. ctx: how many buffered bytes
 * were searched already, so a value that trickles in is searched once. */
static int until_k(lua_State *L, int status, lua_KContext searched) {
  int r;
  csock_Socket *s = csock_readresume(L, status, &r);
  if (s == NULL) return r;
  size_t dlen;
  const char *delim = lua_tolstring(L, 2, &dlen);
  for (;;) {
    const char *p = csock_buf_head(&s->in);
    size_t len = csock_buf_len(&s->in);
    size_t from = (size_t)searched >= dlen ? (size_t)searched - (dlen - 1) : 0;
    const char *hit = len >= from + dlen ? memmem(p + from, len - from, delim, dlen) : NULL;
    if (hit != NULL && (size_t)(hit - p) <= s->readlimit) {
      lua_pushlstring(L, p, (size_t)(hit - p));
      csock_buf_consume(&s->in, (size_t)(hit - p) + dlen);
      r = 1;
      break;
    }
    if (hit != NULL || len >= s->readlimit + dlen) {
      r = csock_fail(L, "line too long");
      break;
    }
    if (s->eof) {
      r = csock_closed(L);
      break;
    }
    searched = (lua_KContext)len;
    if ((r = csock_readmore(L, s, CSOCK_BUF_CHUNK, searched, until_k)) != 0) break;
  }
  int err = csock_readdone(L, s);
  return err ? err : r;
}

static int l_readuntil(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  size_t dlen;
  luaL_checklstring(L, 2, &dlen);
  luaL_argcheck(L, dlen > 0, 2, "empty delimiter");
  lua_settop(L, 2);
  csock_begin(L, s, CSOCK_DIR_READ);
  return until_k(L, LUA_OK, 0);
}

/* Stack: 1 socket, 2.. strings. ctx: bytes of them already sent. Output
 * a task coalesced earlier goes out first, in the same sendmsg. */
static int write_k(lua_State *L, int status, lua_KContext ctx) {
  int r;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (status == LUA_YIELD && (r = csock_resumed(L, s))) return r;
  size_t sent = (size_t)ctx;
  int top = lua_gettop(L);
  for (;;) {
    struct iovec iov[WRITE_IOV];
    int cnt = 0, arg = 2;
    size_t total = 0, skip = sent, pending = csock_buf_len(&s->out);
    for (; arg <= top && skip >= lua_rawlen(L, arg); arg++) skip -= lua_rawlen(L, arg);
    if (arg > top && pending == 0) break;
    if (pending > 0) {
      iov[cnt].iov_base = (void *)csock_buf_head(&s->out);
      iov[cnt++].iov_len = pending;
      total = pending;
    }
    for (int i = arg; i <= top && cnt < WRITE_IOV; i++, skip = 0) {
      size_t len;
      const char *p = lua_tolstring(L, i, &len);
      if (len == skip) continue;
      iov[cnt].iov_base = (void *)(p + skip);
      iov[cnt++].iov_len = len - skip;
      total += len - skip;
    }
    ssize_t n = s->tp->sendv(s, iov, cnt);
    if (n >= 0) {
      size_t from_out = (size_t)n < pending ? (size_t)n : pending;
      csock_buf_consume(&s->out, from_out);
      sent += (size_t)n - from_out;
      if (n > 0) csock_progress(s);
      if ((size_t)n == total) continue;
    } else if (!csock_sys_again((int)n)) {
      csock_output_fail(s, EPIPE); /* a dead connection: later writes say "closed", as the kernel would */
      return csock_oserror(L, (int)n);
    }
    if ((r = csock_wait(L, s, CSOCK_DIR_WRITE, (lua_KContext)sent, write_k))) return r;
  }
  csock_buf_trim(&s->out, csock_pool(s));
  lua_settop(L, 1);
  return 1;
}

char *csock_outreserve(lua_State *L, csock_Socket *s, size_t n) {
  /* In a task, small writes wait in the socket's bounded output buffer
   * for the output queue: one send per socket per turn of the loop. */
  if (csock_buf_len(&s->out) + n > CSOCK_OUT_MAX || s->flushing ||
      csock_task_current(s->net->sched, L) == NULL)
    return NULL;
  size_t avail;
  return csock_buf_reserve(&s->out, n, &avail, csock_pool(s));
}

void csock_outcommit(csock_Socket *s, size_t n) {
  csock_buf_commit(&s->out, n);
  csock_output_markdirty(s);
}

int csock_sendnow(lua_State *L, csock_Socket *s) {
  csock_begin(L, s, CSOCK_DIR_WRITE);
  return write_k(L, LUA_OK, 0);
}

/* A failure of output the queue sent on the script's behalf; out_err is
 * kept, so later writes fail the same way. */
int csock_outfailed(lua_State *L, csock_Socket *s) {
  return s->out_err ? csock_oserror(L, s->out_err) : 0;
}

/* A large write in a task with nothing queued: the kernel gets the bytes
 * now, straight from the strings, and only what it cannot take yet is
 * copied to the queue (when it fits; else write waits as usual). Returns
 * the bytes sent or queued, or -1 when it did not apply or failed (result
 * pushed: *nres). */
static ssize_t write_direct(lua_State *L, csock_Socket *s, int top, size_t total, int *nres) {
  struct iovec iov[WRITE_IOV];
  if (total < WRITE_DIRECT_MIN || top - 1 > WRITE_IOV || csock_buf_len(&s->out) > 0 ||
      s->flushing || csock_task_current(s->net->sched, L) == NULL)
    return -1;
  for (int i = 2; i <= top; i++) {
    size_t len;
    iov[i - 2].iov_base = (void *)lua_tolstring(L, i, &len);
    iov[i - 2].iov_len = len;
  }
  ssize_t n = csock_output_sendqueue(s, iov, top - 1, CSOCK_OUT_MAX);
  if (n < 0) {
    csock_output_fail(s, EPIPE); /* as write_k: later writes say "closed" */
    *nres = csock_oserror(L, (int)n);
    return -1;
  }
  return n;
}

static int l_write(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  int top = lua_gettop(L);
  size_t total = 0;
  for (int i = 2; i <= top; i++) { /* numbers become strings */
    size_t len;
    luaL_checklstring(L, i, &len);
    total += len;
  }
  int r = csock_outfailed(L, s);
  if (r) return r;
  if (total >= WRITE_DIRECT_MIN) {
    int nres = 0;
    ssize_t sent = write_direct(L, s, top, total, &nres);
    if (nres) return nres;
    if (sent >= 0 && (size_t)sent == total) {
      lua_settop(L, 1);
      return 1;
    }
    if (sent >= 0) { /* the rest does not fit the queue: write waits for room */
      csock_begin(L, s, CSOCK_DIR_WRITE);
      return write_k(L, LUA_OK, (lua_KContext)sent);
    }
  }
  char *p = csock_outreserve(L, s, total);
  if (p == NULL) return csock_sendnow(L, s);
  for (int i = 2; i <= top; i++) {
    size_t len;
    const char *str = lua_tolstring(L, i, &len);
    memcpy(p, str, len);
    p += len;
  }
  csock_outcommit(s, total);
  lua_settop(L, 1);
  return 1;
}

static int l_flush(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_settop(L, 1);
  int r = csock_outfailed(L, s);
  if (r) return r;
  if (csock_buf_len(&s->out) == 0) return 1;
  return csock_sendnow(L, s);
}

static const luaL_Reg methods[] = {
  {"read", l_read},
  {"lines", l_lines},
  {"readuntil", l_readuntil},
  {"write", l_write},
  {"flush", l_flush},
  {NULL, NULL},
};

void csock_open_bufio(lua_State *L) {
  luaL_setfuncs(L, methods, 0);
}
