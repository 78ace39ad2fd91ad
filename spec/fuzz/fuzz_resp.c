/*
 * libFuzzer harness for sock:readresp() and sock:writeresp() (resp.c)
 * through the Lua API, on real unix stream sockets. The first input byte
 * picks the read limit, the rest is the byte stream the peer sends before
 * shutting down its side. It checks that:
 *  - each value readresp returns is a RESP value: a string, an integer,
 *    false, { err = string } and nothing else, or a list (keys 1..#t only)
 *    of such values, at most 33 levels deep counting the innermost value
 *    (arrays nested at most 32 deep, as documented);
 *  - readresp fails only with nil and "closed", "line too long",
 *    "timeout" or "protocol error: ...";
 *  - every value read survives writeresp then readresp on a second pair
 *    unchanged, and writeresp raises, sending nothing, for an error whose
 *    message has a line break.
 * The checks are a Lua chunk loaded once; any Lua error in it aborts.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lualib.h"
#include "csock.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* Called once with (core, path of the listener); returns the function
 * called per input with the input as a string. */
static const char chunk[] =
  "local core, path = ...\n"
  "local mtype, fmt = math.type, string.format\n"
  "local MAX_DEPTH = 32 -- arrays; docs/api.md: deeper ones are a protocol error\n"
  "\n"
  "-- One listener for the whole run: a new pair per input is a connect and an accept.\n"
  "local listener = assert(core.socket('unix'))\n"
  "assert(listener:bind(path))\n"
  "assert(listener:listen())\n"
  "listener:settimeout(1)\n"
  "\n"
  "local function pair()\n"
  "  local c = assert(core.socket('unix'))\n"
  "  c:settimeout(1)\n"
  "  assert(c:connect(path))\n"
  "  local s = assert(listener:accept())\n"
  "  s:settimeout(1)\n"
  "  return c, s\n"
  "end\n"
  "\n"
  "-- A short printable form of a value, for the messages.\n"
  "local function show(v, depth)\n"
  "  depth = depth or 0\n"
  "  if type(v) == 'string' then\n"
  "    return #v > 40 and fmt('%q..(%d bytes)', v:sub(1, 40), #v) or fmt('%q', v)\n"
  "  elseif type(v) ~= 'table' then return tostring(v)\n"
  "  elseif depth > 3 then return '{...}' end\n"
  "  local parts = {}\n"
  "  for k, x in pairs(v) do\n"
  "    if #parts == 8 then parts[#parts + 1] = '...' break end\n"
  "    parts[#parts + 1] = fmt('[%s]=%s', show(k, 4), show(x, depth + 1))\n"
  "  end\n"
  "  return '{' .. table.concat(parts, ', ') .. '}'\n"
  "end\n"
  "\n"
  "local function fail(f, ...) error('property violated: ' .. fmt(f, ...), 2) end\n"
  "\n"
  "-- Raises unless v is a RESP value; depth counts the lists around v.\n"
  "local function check(v, depth, what)\n"
  "  local t = type(v)\n"
  "  if t == 'string' or v == false then return end\n"
  "  if t == 'number' then\n"
  "    if mtype(v) ~= 'integer' then fail('%s returned the float %s', what, show(v)) end\n"
  "    return\n"
  "  end\n"
  "  if t ~= 'table' then fail('%s returned a %s: %s', what, t, show(v)) end\n"
  "  if getmetatable(v) ~= nil then fail('%s returned a table with a metatable', what) end\n"
  "  local err = rawget(v, 'err')\n"
  "  if err ~= nil then\n"
  "    if type(err) ~= 'string' or next(v, 'err') ~= nil or next(v) ~= 'err' then\n"
  "      fail('%s returned a malformed error %s', what, show(v))\n"
  "    end\n"
  "    return\n"
  "  end\n"
  "  if depth + 1 > MAX_DEPTH then fail('%s returned arrays nested over %d deep', what, MAX_DEPTH) end\n"
  "  local n, keys = #v, 0\n"
  "  for k in pairs(v) do\n"
  "    if mtype(k) ~= 'integer' or k < 1 or k > n then\n"
  "      fail('%s returned a list with the key %s (length %d): %s', what, show(k), n, show(v))\n"
  "    end\n"
  "    keys = keys + 1\n"
  "  end\n"
  "  if keys ~= n then fail('%s returned a list with holes: %s', what, show(v)) end\n"
  "  for i = 1, n do check(v[i], depth + 1, what) end\n"
  "end\n"
  "\n"
  "-- Whether an error in v has a line break, which writeresp refuses.\n"
  "local function unwritable(v)\n"
  "  if type(v) ~= 'table' then return false end\n"
  "  if v.err ~= nil then return v.err:find('[\\r\\n]') ~= nil end\n"
  "  for i = 1, #v do if unwritable(v[i]) then return true end end\n"
  "  return false\n"
  "end\n"
  "\n"
  "-- Deep equality of two checked values (integers stay integers).\n"
  "local function same(a, b)\n"
  "  if type(a) ~= type(b) then return false end\n"
  "  if type(a) == 'number' then return mtype(a) == mtype(b) and a == b end\n"
  "  if type(a) ~= 'table' then return a == b end\n"
  "  if a.err ~= nil or b.err ~= nil then return a.err == b.err end\n"
  "  if #a ~= #b then return false end\n"
  "  for i = 1, #a do if not same(a[i], b[i]) then return false end end\n"
  "  return true\n"
  "end\n"
  "\n"
  "-- s2 must hold nothing more: nothing sent beyond what was read back.\n"
  "local function nothing_left(s2, after)\n"
  "  s2:settimeout(0)\n"
  "  local v, err = s2:readresp()\n"
  "  s2:settimeout(1)\n"
  "  if v ~= nil or err ~= 'timeout' then\n"
  "    fail('bytes left on the wire after %s: %s, %s', after, show(v), tostring(err))\n"
  "  end\n"
  "end\n"
  "\n"
  "local function roundtrip(v, c2, s2)\n"
  "  if unwritable(v) then\n"
  "    if pcall(c2.writeresp, c2, v) then fail('writeresp took an error with a line break: %s', show(v)) end\n"
  "    nothing_left(s2, 'a writeresp that raised')\n"
  "    return\n"
  "  end\n"
  "  local ok, r, e = pcall(c2.writeresp, c2, v)\n"
  "  if not ok then fail('writeresp raised %q for %s', tostring(r), show(v)) end\n"
  "  if r ~= c2 then fail('writeresp failed: %s, %s', tostring(r), tostring(e)) end\n"
  "  local w, err = s2:readresp()\n"
  "  if w == nil then fail('readresp of %s as writeresp wrote it: nil, %s', show(v), tostring(err)) end\n"
  "  check(w, 0, 'readresp of a writeresp')\n"
  "  if not same(v, w) then fail('round trip changed %s into %s', show(v), show(w)) end\n"
  "end\n"
  "\n"
  "local function results(...) return select('#', ...), ... end\n"
  "\n"
  "return function(input)\n"
  "  local c, s = pair()\n"
  "  local c2, s2 = pair()\n"
  "  -- room for a whole encoded value (an inline command grows 3.5 times)\n"
  "  c2:setoption('sndbuf', 1 << 20)\n"
  "  s:settimeout(0) -- every byte is in the kernel before the first read\n"
  "  s:setreadlimit(16 + input:byte(1) * 64)\n"
  "  local stream, sent = input:sub(2), 0\n"
  "  while sent < #stream do\n"
  "    sent = sent + assert(c:send(stream, sent + 1))\n"
  "  end\n"
  "  assert(c:shutdown('w'))\n"
  "  for _ = 1, 10000 do\n"
  "    local n, v, err = results(s:readresp())\n"
  "    if v == nil then\n"
  "      if type(err) ~= 'string' or not (err == 'closed' or err == 'line too long' or err == 'timeout'\n"
  "          or err:find('^protocol error: ')) then\n"
  "        fail('readresp failed with %s', show(err))\n"
  "      end\n"
  "      break\n"
  "    end\n"
  "    if n ~= 1 then fail('readresp returned %d results for a value', n) end\n"
  "    check(v, 0, 'readresp')\n"
  "    roundtrip(v, c2, s2)\n"
  "  end\n"
  "  nothing_left(s2, 'the round trips')\n"
  "  c:close(); s:close(); c2:close(); s2:close()\n"
  "end\n";

static lua_State *state;
static int test_ref = LUA_NOREF;
static char dir[] = "/tmp/fuzz_resp.XXXXXX";
static char path[sizeof dir + 8];

/* The listener's path and its directory outlive a normal exit otherwise. */
static void cleanup(void) {
  unlink(path);
  rmdir(dir);
}

/* Calls the function under the arguments with a traceback on error; a
 * failure is a violated property or a harness bug: either way, stop. */
static void call(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_remove(L, -2);
  lua_insert(L, base);
  if (lua_pcall(L, nargs, nresults, base) != LUA_OK) {
    fprintf(stderr, "fuzz_resp: %s\n", lua_tostring(L, -1));
    cleanup(); /* abort() skips atexit */
    abort();
  }
  lua_remove(L, base);
}

static void init(void) {
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/l", dir);
  atexit(cleanup);
  lua_State *L = luaL_newstate();
  CHECK(L != NULL);
  luaL_openlibs(L);
  CHECK(luaL_loadstring(L, chunk) == LUA_OK);
  luaL_requiref(L, "csock.core", luaopen_csock_core, 0);
  lua_pushstring(L, path);
  call(L, 2, 1);
  CHECK(lua_isfunction(L, -1));
  test_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  state = L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (state == NULL) init();
  /* the whole stream must fit in the socket buffer before it is read */
  if (size < 1 || size > 60000) return 0;
  lua_State *L = state;
  lua_rawgeti(L, LUA_REGISTRYINDEX, test_ref);
  lua_pushlstring(L, (const char *)data, size);
  call(L, 1, 0);
  lua_settop(L, 0);
  /* frees this input's garbage now: libFuzzer runs a slow leak check after
   * every input that allocated more than it freed */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
