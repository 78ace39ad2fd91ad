/*
 * sock:readresp(): one value of the Redis protocol (RESP2), parsed in C
 * from the socket's receive buffer. A server reads commands with it (an
 * array of bulk strings, or an inline command line); a client reads
 * replies. One call per value instead of a read per line and per string.
 * sock:writeresp(v) is its inverse, encoding straight into the output.
 */
#include <string.h>

#include "core.h"

#define RESP_MAX_BULK (512LL * 1024 * 1024) /* as Redis' proto-max-bulk-len */
#define RESP_MAX_ARRAY (1024 * 1024)        /* as Redis' limit on a command's words */
#define RESP_MAX_DEPTH 32
#define RESP_LEVEL 3 /* stack slots per open array: the table, its filled count, its size */

/* A RESP number: an optional '-', then 1 to 18 digits, nothing else. */
static int parse_int(const char *p, size_t len, long long *out) {
  int neg = len > 0 && *p == '-';
  p += neg;
  len -= (size_t)neg;
  if (len == 0 || len > 18) return 0;
  long long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9') return 0;
    v = v * 10 + (p[i] - '0');
  }
  *out = neg ? -v : v;
  return 1;
}

/* An inline command: its words, split on spaces and tabs, as a list. */
static void push_inline(lua_State *L, const char *p, size_t len) {
  lua_createtable(L, 4, 0);
  lua_Integer n = 0;
  for (size_t i = 0; i < len;) {
    while (i < len && (p[i] == ' ' || p[i] == '\t')) i++;
    size_t from = i;
    while (i < len && p[i] != ' ' && p[i] != '\t') i++;
    if (i > from) {
      lua_pushlstring(L, p + from, i - from);
      lua_rawseti(L, -2, ++n);
    }
  }
}

/* Puts the value on top into the innermost open array, closing the arrays
 * that it fills. Returns 1 when a whole value is complete (on top). */
static int place(lua_State *L) {
  while (lua_gettop(L) > 2) { /* stack: socket, ..., table, filled, size, value */
    lua_Integer filled = lua_tointeger(L, -3) + 1;
    lua_Integer size = lua_tointeger(L, -2);
    lua_rawseti(L, -4, filled);
    if (filled < size) {
      lua_pushinteger(L, filled);
      lua_replace(L, -3);
      return 0;
    }
    lua_pop(L, 2); /* the table is the value now */
  }
  return 1;
}

static int protocol_error(lua_State *L, const char *what) {
  lua_pushfstring(L, "protocol error: %s", what);
  return csock_fail(L, lua_tostring(L, -1));
}

/* Handles one line (without its "\r\n"). Returns 1 when a whole value is
 * complete, 0 to go on (*bulk set when a bulk string's bytes come next),
 * or -1 after pushing a protocol error. */
static int on_line(lua_State *L, const char *p, size_t len, long long *bulk) {
  int nested = lua_gettop(L) > 1;
  long long n = 0;
  if (len == 0) {
    if (nested) return protocol_error(L, "empty line in an array"), -1;
    return 0; /* as Redis: an empty inline command is skipped */
  }
  switch (*p) {
    case '+':
      lua_pushlstring(L, p + 1, len - 1);
      return place(L);
    case '-':
      lua_createtable(L, 0, 1);
      lua_pushlstring(L, p + 1, len - 1);
      lua_setfield(L, -2, "err");
      return place(L);
    case ':':
      if (!parse_int(p + 1, len - 1, &n)) return protocol_error(L, "bad integer"), -1;
      lua_pushinteger(L, (lua_Integer)n);
      return place(L);
    case '$':
      if (!parse_int(p + 1, len - 1, &n) || n < -1 || n > RESP_MAX_BULK)
        return protocol_error(L, "bad bulk length"), -1;
      if (n >= 0) {
        *bulk = n;
        return 0;
      }
      lua_pushboolean(L, 0); /* null bulk string */
      return place(L);
    case '*':
      if (!parse_int(p + 1, len - 1, &n) || n < -1 || n > RESP_MAX_ARRAY)
        return protocol_error(L, "bad array length"), -1;
      if (n == -1) {
        lua_pushboolean(L, 0); /* null array */
        return place(L);
      }
      if ((lua_gettop(L) - 1) / RESP_LEVEL >= RESP_MAX_DEPTH) /* an empty one counts too */
        return protocol_error(L, "arrays nested too deep"), -1;
      if (n == 0) {
        lua_newtable(L);
        return place(L);
      }
      lua_createtable(L, n < 64 ? (int)n : 64, 0); /* grows as elements arrive, not on a promise */
      lua_pushinteger(L, 0);
      lua_pushinteger(L, (lua_Integer)n);
      return 0;
    default:
      if (nested) return protocol_error(L, "expected a type byte"), -1;
      push_inline(L, p, len);
      if (lua_rawlen(L, -1) == 0) { /* only blanks: skipped as an empty line */
        lua_pop(L, 1);
        return 0;
      }
      return place(L);
  }
}

enum { STEP_NEED = -1, STEP_ON = 0 }; /* else: the number of results pushed */

/* One step of reading a value from what is buffered: a line, or a bulk
 * string's bytes. *bulk: 0, or 1 + the length of a bulk string whose
 * bytes come next; *want: how many bytes to ask for on STEP_NEED. */
static int resp_step(lua_State *L, csock_Socket *s, lua_KContext *bulk, size_t *want) {
  const char *p = csock_buf_head(&s->in);
  size_t len = csock_buf_len(&s->in), take, keep;
  if (*bulk > 0) { /* a bulk string's bytes, then "\r\n" */
    size_t need = (size_t)*bulk - 1 + 2;
    if (len < need) {
      if (s->eof) return csock_closed(L);
      *want = need - len > CSOCK_FILL_MAX ? CSOCK_FILL_MAX : need - len;
      return STEP_NEED;
    }
    if (p[need - 2] != '\r' || p[need - 1] != '\n') return protocol_error(L, "bulk string without CRLF");
    lua_pushlstring(L, p, need - 2);
    csock_buf_consume(&s->in, need);
    *bulk = 0;
    return place(L);
  }
  switch (csock_buf_scan(&s->in, CSOCK_FMT_LINE, 0, s->readlimit, s->eof, &take, &keep, want)) {
    case CSOCK_SCAN_DONE: {
      if (take == keep) return csock_closed(L); /* the stream ended inside a line */
      long long n = -1;
      int st = on_line(L, p, keep, &n);
      if (st < 0) return 2; /* nil, message */
      csock_buf_consume(&s->in, take);
      if (n >= 0) *bulk = (lua_KContext)n + 1;
      return st;
    }
    case CSOCK_SCAN_NEED: return STEP_NEED;
    case CSOCK_SCAN_TOOLONG: return csock_fail(L, "line too long");
    default: return csock_closed(L);
  }
}

/* Stack: 1 socket, then RESP_LEVEL slots per array under construction.
 * ctx: resp_step's *bulk, kept across waits. */
static int resp_k(lua_State *L, int status, lua_KContext ctx) {
  int r;
  csock_Socket *s = csock_readresume(L, status, &r);
  if (s == NULL) return r;
  for (;;) {
    size_t want;
    r = resp_step(L, s, &ctx, &want);
    if (r > 0) break; /* the value (place returned 1), or a failure */
    if (r == STEP_NEED && (r = csock_readmore(L, s, want, ctx, resp_k)) != 0) break;
  }
  int err = csock_readdone(L, s);
  return err ? err : r;
}

static int l_readresp(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_settop(L, 1);
  luaL_checkstack(L, RESP_LEVEL * RESP_MAX_DEPTH + 8, "readresp");
  csock_begin(L, s, CSOCK_DIR_READ);
  return resp_k(L, LUA_OK, 0);
}

/* Writes v in decimal at out (when not NULL); returns its length. */
static size_t put_int(char *out, long long v) {
  char digits[24];
  size_t n = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do digits[n++] = (char)('0' + u % 10); while ((u /= 10) > 0);
  if (v < 0) digits[n++] = '-';
  if (out != NULL)
    for (size_t i = 0; i < n; i++) out[i] = digits[n - 1 - i];
  return n;
}

/* A type byte, a number, CRLF. */
static size_t put_head(char *out, char type, long long v) {
  if (out != NULL) *out = type;
  size_t n = put_int(out ? out + 1 : NULL, v);
  if (out != NULL) memcpy(out + 1 + n, "\r\n", 2);
  return n + 3;
}

static size_t put_bytes(char *out, const char *p, size_t len) {
  if (out != NULL) memcpy(out, p, len);
  return len;
}

/* Encodes the value at idx (argument 2 or an element below it) at out, or
 * only measures it when out is NULL. Raises for what RESP cannot carry. */
static size_t encode(lua_State *L, int idx, int depth, char *out) {
  size_t len, n = 0;
  const char *p;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      p = lua_tolstring(L, idx, &len);
      n = put_head(out, '$', (long long)len);
      n += put_bytes(out ? out + n : NULL, p, len);
      return n + put_bytes(out ? out + n : NULL, "\r\n", 2);
    case LUA_TNUMBER: {
      int isint;
      lua_Integer i = lua_tointegerx(L, idx, &isint);
      if (!isint) luaL_argerror(L, 2, "number has no integer representation");
      return put_head(out, ':', (long long)i);
    }
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) luaL_argerror(L, 2, "true has no RESP form (false is null)");
      return put_bytes(out, "$-1\r\n", 5);
    case LUA_TTABLE:
      luaL_checkstack(L, 2, "writeresp");
      lua_pushliteral(L, "err");
      if (lua_rawget(L, idx) != LUA_TNIL) {
        p = lua_tolstring(L, -1, &len);
        if (p == NULL || memchr(p, '\r', len) != NULL || memchr(p, '\n', len) != NULL)
          luaL_argerror(L, 2, "an error's err must be a string of one line");
        n = put_bytes(out, "-", 1);
        n += put_bytes(out ? out + n : NULL, p, len);
        n += put_bytes(out ? out + n : NULL, "\r\n", 2);
        lua_pop(L, 1);
        return n;
      }
      lua_pop(L, 1);
      /* depth counts the arrays around this one, as readresp's limit does */
      if (depth >= RESP_MAX_DEPTH) luaL_argerror(L, 2, "tables nested too deep (or a cycle)");
      lua_Integer count = (lua_Integer)lua_rawlen(L, idx);
      n = put_head(out, '*', (long long)count);
      for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, idx, i);
        n += encode(L, lua_gettop(L), depth + 1, out ? out + n : NULL);
        lua_pop(L, 1);
      }
      return n;
    default:
      return luaL_argerror(L, 2, lua_pushfstring(L, "a %s has no RESP form", luaL_typename(L, idx)));
  }
}

static int l_writeresp(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  size_t n = encode(L, 2, 0, NULL);
  int r = csock_outfailed(L, s);
  if (r) return r;
  char *p = csock_outreserve(L, s, n);
  if (p != NULL) {
    encode(L, 2, 0, p);
    csock_outcommit(s, n);
    lua_settop(L, 1);
    return 1;
  }
  p = lua_newuserdatauv(L, n, 0); /* too big to coalesce: sent as one string */
  encode(L, 2, 0, p);
  lua_pushlstring(L, p, n);
  lua_replace(L, 2);
  lua_settop(L, 2);
  return csock_sendnow(L, s);
}

static const luaL_Reg methods[] = {
  {"readresp", l_readresp},
  {"writeresp", l_writeresp},
  {NULL, NULL},
};

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_resp(lua_State *L) {
  luaL_setfuncs(L, methods, 0);
}
