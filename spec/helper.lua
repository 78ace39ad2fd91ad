-- spec/helper.lua: small helpers shared by the csock specs (require "helper"), and by the
-- child processes they start (H.spawn_peer's chunks can `require "helper"` too).
--
-- Deadlines: a blocking call cannot be interrupted from Lua, so
--   * every socket the helpers make gets a timeout (H.TIMEOUT seconds),
--   * every test runs under a watchdog, a killer process armed before the test and
--     disarmed after it. spec/setup.lua (busted's helper script, named in .busted) does
--     that for every test of every file: a spec file writes nothing for it, and asks for a
--     longer deadline with H.deadline(seconds) (see there),
--   * anything that needs a concurrent peer runs it as a child process under
--     `timeout`, via H.spawn_peer.
--
-- csock is looked up when a helper runs, not bound when this module loads: busted runs each
-- spec file insulated (what the file requires is unloaded after it), while this module is
-- loaded once for the whole run by spec/setup.lua; so each file's helpers use the csock
-- that file required, as its own code does.
local csock = setmetatable({}, { __index = function(_, k) return require("csock")[k] end })
-- busted's assert (luassert), for the assert_* helpers; only they need it, so child
-- processes, which have no busted, can still require this module.
local check = setmetatable({}, { __index = function(_, k) return require("luassert")[k] end })

local H = {}

H.TIMEOUT = 5          -- seconds, set on every socket the helpers create
H.TEST_DEADLINE = 60   -- seconds a single test may run before the watchdog kills busted
H.PEER_DEADLINE = 20   -- seconds a spawned peer process may run (`timeout`)

local function read_cmd(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

H.ROOT = read_cmd("pwd"):gsub("\n$", "")

local function self_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end
H.PID = self_pid()

-- s (tostring'd) as one word for sh: in single quotes, each ' written as '\''.
function H.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local shell_quote = H.shell_quote

-- Arms a process that kills this Lua process (busted) after `seconds`, with a
-- message on stderr. Returns a function that disarms it. The watchdog runs in
-- its own process group (setsid), so disarming ends its `sleep` too.
local function watchdog(seconds)
  seconds = seconds or H.TEST_DEADLINE
  local script = string.format(
    "echo $$; exec >/dev/null; sleep %d; " ..
    "echo 'csock spec watchdog: a test ran longer than %d s; killing pid %d' >&2; kill -9 %d",
    seconds, seconds, H.PID, H.PID)
  local p = assert(io.popen("setsid sh -c " .. shell_quote(script) .. " &", "r"))
  local pgid = math.tointeger(tonumber(p:read("l")))
  p:close()
  return function()
    if pgid then os.execute("kill -- -" .. pgid .. " 2>/dev/null") end
    pgid = nil
  end
end

-- The test's watchdog: H.arm_watchdog(seconds) disarms the one armed (if any) and arms a
-- new one, for `seconds` (H.TEST_DEADLINE if nil); H.disarm_watchdog() disarms it.
-- spec/setup.lua calls them around every test; spec files use H.deadline instead.
local disarm_current
function H.disarm_watchdog()
  if disarm_current then disarm_current() end
  disarm_current = nil
end
function H.arm_watchdog(seconds)
  H.disarm_watchdog()
  disarm_current = watchdog(seconds)
end

-- A longer (or shorter) deadline than H.TEST_DEADLINE for every test of the block being
-- defined: call it in a spec file's main chunk (the whole file) or in a describe's body
-- (that describe, nested ones included). It adds a before_each there that re-arms the
-- watchdog with `seconds`; the innermost call wins, as its before_each runs last.
--   H.deadline(300)  -- at the top of a file: each of its tests may run 300 s
function H.deadline(seconds)
  assert(math.type(seconds) == "integer" and seconds > 0, "H.deadline: seconds must be a positive integer")
  require("busted").before_each(function() H.arm_watchdog(seconds) end)
end

-- Whether this run is one of the slow instrumented ones: valgrind (`make valgrind`
-- preloads its vgpreload library) or ASan (`make asan` sets CSOCK_SPEC_CPATH to its build).
-- Long tests scale their load down under them; their assertions stay.
H.UNDER_VALGRIND = (os.getenv("LD_PRELOAD") or ""):find("vgpreload", 1, true) ~= nil
H.UNDER_ASAN = (os.getenv("CSOCK_SPEC_CPATH") or ""):find("asan", 1, true) ~= nil

-- Asserts that one turn of the loop finds nothing to do: no task or timer is left (the loop
-- is one per Lua state, shared by every spec file of the busted process).
function H.nothing_left()
  check.is_false(csock.step(), "a task or a timer was left in the loop")
end

-- Asserts that a connected pair still carries bytes both ways (after a call that failed).
function H.assert_usable(c, s)
  c:settimeout(5); s:settimeout(5)
  check.are.equal(c, c:write("still\n"))
  check.are.equal("still", s:read("l"))
  check.are.equal(3, s:send("ok\n"))
  check.are.equal("ok", c:read("l"))
end

-- Asserts that the loop still runs tasks (after a call that failed), and is left empty.
function H.assert_loop_usable()
  check.are.same({ n = 1, 42 }, table.pack(csock.run(function()
    csock.sleep(0)
    return 42
  end)))
  H.nothing_left()
end

-- fn(...) must raise: a string error (not a returned failure), and not a slip of Lua such
-- as calling or indexing nil. Returns the message. With `plain`, the message must contain
-- it (a plain substring); H.assert_raises_match takes a Lua pattern instead.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  check.is_false(ok, "expected an error, got a normal return")
  check.are.equal("string", type(err))
  check.is_falsy(err:find("attempt to call", 1, true), err)
  check.is_falsy(err:find("attempt to index", 1, true), err)
  return err
end
function H.assert_raises(plain, fn, ...)
  local err = raised(fn, ...)
  if plain then
    check.is_truthy(err:find(plain, 1, true), ("error %q does not contain %q"):format(err, plain))
  end
  return err
end
function H.assert_raises_match(pattern, fn, ...)
  local err = raised(fn, ...)
  check.is_truthy(err:find(pattern), "error was: " .. err)
  return err
end

-- A task that counts every `every` seconds until `stop()` is called; it
-- returns the number of ticks when joined. Returns t: t.n (ticks so far), t.task, t.stop().
function H.ticker(every)
  local t = { n = 0, running = true }
  t.task = csock.spawn(function()
    while t.running do
      csock.sleep(every)
      t.n = t.n + 1
    end
    return t.n
  end)
  function t.stop()
    t.running = false
    return t.task:join()
  end
  return t
end

-- A real wait (one turn of the loop through the poller). Tests whose tasks
-- would otherwise all end without ever waiting call it, so that a loop that
-- hangs in that case (see "returns the main task's results when every task
-- ends without waiting" in spec/loop_tasks_spec.lua, run in a child) fails
-- that one test and does not stall the whole suite.
function H.settle() csock.sleep(0) end

-- A value as a test name shows it: strings quoted (%q, newlines as \n), NaN, and the numbers
-- at the edges of the number line by name (inf, -inf, 2^53, 2^63, maxinteger, mininteger).
function H.show(v)
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if v ~= v then return "NaN" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  if v == 2 ^ 53 then return "2^53" elseif v == 2 ^ 63 then return "2^63" end
  if v == math.maxinteger then return "maxinteger" elseif v == math.mininteger then return "mininteger" end
  return tostring(v)
end

-- A packed result list (table.pack(...)) as "(v1, v2, ...)", for assertion messages.
function H.show_results(r)
  local t = {}
  for i = 1, r.n or #r do t[i] = tostring(r[i]) end
  return "(" .. table.concat(t, ", ") .. ")"
end

-- Monotonic time, and how long fn(...) took: elapsed, then a table.pack of its results.
function H.now() return csock.gettime() end
function H.timed(fn, ...)
  local t0 = csock.gettime()
  local r = table.pack(fn(...))
  return csock.gettime() - t0, r
end

-- A connected TCP pair over the loopback (family "inet" -> 127.0.0.1, "inet6" -> ::1):
-- returns client, server_side. The kernel completes the handshake into the
-- listen backlog, so connect-then-accept works in one process.
function H.tcp_pair(family)
  family = family or "inet"
  local host = family == "inet6" and "::1" or "127.0.0.1"
  local l = csock.socket(family, "stream")
  l:settimeout(H.TIMEOUT)
  assert(l:bind(host, 0))
  assert(l:listen())
  local _, port = l:getsockname()
  local c = csock.socket(family, "stream")
  c:settimeout(H.TIMEOUT)
  assert(c:connect(host, port))
  local s = assert(l:accept())
  s:settimeout(H.TIMEOUT)
  l:close()
  return c, s
end

-- Files (paths) to remove when the current test ends, whatever its outcome: spec/setup.lua
-- calls H.remove_test_files() after each test.
local test_files = {}
function H.remove_after_test(...)
  for i = 1, select("#", ...) do test_files[#test_files + 1] = (select(i, ...)) end
end
function H.remove_test_files()
  for _, path in ipairs(test_files) do os.remove(path) end
  test_files = {}
end

-- A fresh unix socket path (the socket file does not exist yet).
function H.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".sock"
end

-- A connected unix stream pair: client, server_side, path.
function H.unix_pair()
  local path = H.tmpname()
  local l = csock.socket("unix", "stream")
  l:settimeout(H.TIMEOUT)
  assert(l:bind(path))
  assert(l:listen())
  local c = csock.socket("unix", "stream")
  c:settimeout(H.TIMEOUT)
  assert(c:connect(path))
  local s = assert(l:accept())
  s:settimeout(H.TIMEOUT)
  l:close()
  os.remove(path)
  return c, s, path
end

-- A listening stream socket and its port. opts (all optional): family ("inet"; or "inet6"),
-- host (the family's loopback address), backlog (listen's default), timeout (H.TIMEOUT).
function H.listener(opts)
  opts = opts or {}
  local family = opts.family or "inet"
  local l = csock.socket(family)
  l:settimeout(opts.timeout or H.TIMEOUT)
  assert(l:bind(opts.host or (family == "inet6" and "::1" or "127.0.0.1"), 0))
  assert(l:listen(opts.backlog))
  local _, port = l:getsockname()
  return l, port
end

-- A stream socket with `timeout` (H.TIMEOUT if nil), connected to 127.0.0.1:port (a number
-- or a numeric string, such as a peer chunk's arg[1]); raises if the connect fails.
function H.connect_tcp(port, timeout)
  local c = csock.socket()
  c:settimeout(timeout or H.TIMEOUT)
  assert(c:connect("127.0.0.1", math.tointeger(tonumber(port))))
  return c
end

-- A loopback port that nobody listens on (bound, read, closed).
function H.free_port(family)
  family = family or "inet"
  local s = csock.socket(family)
  assert(s:bind(family == "inet6" and "::1" or "127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- Number of open socket file descriptors of this process (entries of
-- /proc/PID/fd that link to "socket:[...]"). Only sockets are counted: the
-- pipe popen opens for `ls` itself may or may not be listed, depending on
-- how the parent and child are scheduled.
function H.count_fds()
  return tonumber(read_cmd("ls -l /proc/" .. H.PID .. "/fd 2>/dev/null | grep -c 'socket:'"))
end

-- The soft limit on open files of this process.
function H.max_fds()
  for line in io.lines("/proc/self/limits") do
    local soft = line:match("^Max open files%s+(%S+)")
    if soft then return tonumber(soft) or math.huge end
  end
  return 0
end

-- Sleep without using csock (for peers and for pacing).
function H.sleep(s)
  os.execute("sleep " .. s)
end

-- Polls fn() every 10 ms until it returns a truthy value or `seconds` pass;
-- returns fn's last result (for kernel state that settles asynchronously).
function H.eventually(fn, seconds)
  local deadline = csock.gettime() + (seconds or 2)
  local v = fn()
  while not v and csock.gettime() < deadline do
    H.sleep(0.01)
    v = fn()
  end
  return v
end

-- Runs `code` (a Lua chunk) in a child `lua5.4` under `timeout`, with the
-- module paths of .busted (absolute), so it can `require "csock"` and
-- `require "helper"` (CSOCK_SPEC_CPATH, e.g. "build/asan/?.so", replaces "?.so").
-- Extra arguments reach the chunk as `...` and `arg`.
-- Returns a peer: peer:line() reads one line of its stdout (stderr is merged),
-- peer:finish() reads the rest and returns output, exit code (124 = killed by timeout).
function H.spawn_peer(code, ...)
  return H.spawn_peer_with(nil, code, ...)
end

-- Like H.spawn_peer, but with `setup` (shell words such as "ulimit -n 64;" or
-- "LD_PRELOAD=..."), the child's `lua5.4` is started by `sh -c` after them.
function H.spawn_peer_with(setup, code, ...)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  -- the prelude stays on line 1 so error line numbers are off by one only
  f:write(string.format(
    "local ROOT = %q; package.path = ROOT..'/lua/?.lua;'..ROOT..'/lua/?/init.lua;'..ROOT..'/spec/?.lua;'..package.path; " ..
    "package.cpath = ROOT..'/'..%q..';'..package.cpath; io.stdout:setvbuf('line')\n",
    H.ROOT, os.getenv("CSOCK_SPEC_CPATH") or "?.so"), code)
  f:close()
  local args = {}
  for i = 1, select("#", ...) do args[i] = shell_quote((select(i, ...))) end
  local cmd
  if setup then
    local inner = setup .. " exec lua5.4 " .. shell_quote(file) .. " " .. table.concat(args, " ")
    cmd = string.format("timeout %d sh -c %s 2>&1", H.PEER_DEADLINE, shell_quote(inner))
  else
    cmd = string.format("timeout %d lua5.4 %s %s 2>&1", H.PEER_DEADLINE, shell_quote(file),
                        table.concat(args, " "))
  end
  local peer = { pipe = assert(io.popen(cmd, "r")), file = file }
  function peer:line() return self.pipe:read("l") end
  function peer:finish()
    local out = self.pipe:read("a")
    local _, _, rc = self.pipe:close()
    os.remove(self.file)
    return out, rc
  end
  return peer
end

-- Builds spec/tools/NAME.c into a preloadable shared object (a temp file); returns its path.
function H.build_shim(name)
  local so = os.tmpname() .. ".so"
  local cmd = string.format("cc -shared -fPIC -O1 -o %s %s -ldl 2>&1",
    shell_quote(so), shell_quote(H.ROOT .. "/spec/tools/" .. name .. ".c"))
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "cannot build spec/tools/" .. name .. ".c: " .. out)
  return so
end

-- The LD_PRELOAD assignment (shell words, for H.spawn_peer_with) a child needs for `so`:
-- after what the shell already has (the ASan runtime under `make asan`), never before it.
function H.preload(so)
  return 'LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}"' .. shell_quote(so)
end

-- n bytes of `ch`, built by doubling (string.rep copies byte by byte: seconds for 256 MiB).
function H.filled(n, ch)
  local s = ch
  while #s * 2 <= n do s = s .. s end
  return s .. s:sub(1, n - #s)
end

-- Everything socket `s` receives until EOF or failure (s has a timeout).
function H.drain(s)
  local parts = {}
  while true do
    local d = s:recv()
    if not d then break end
    parts[#parts + 1] = d
  end
  return table.concat(parts)
end

-- Deterministic pseudo-random bytes (an LCG), the same in parent and peer.
function H.pattern(n, seed)
  local t, x = {}, seed or 1
  local chunk = {}
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[#chunk + 1] = (x >> 16) & 255
    if #chunk == 4096 or i == n then
      t[#t + 1] = string.char(table.unpack(chunk))
      chunk = {}
    end
  end
  return table.concat(t)
end

-- `size` bytes (a multiple of 65536) of 64 KiB blocks: block i starts with its
-- index as 8 hex digits, followed by pattern bytes rotated by i, so a lost,
-- repeated or reordered block shows.
function H.bulk(size)
  local base = H.pattern(65536, 7)
  local blocks = {}
  for i = 0, size // 65536 - 1 do
    local r = i % 4096 + 9
    blocks[#blocks + 1] = string.format("%08x", i) .. (base:sub(r) .. base:sub(9, r - 1))
  end
  return table.concat(blocks)
end

-- Offset of the first differing byte of a and b (nil when equal).
function H.first_diff(a, b)
  if a == b then return nil end
  local n = math.min(#a, #b)
  local step = 65536
  for i = 1, n, step do
    if a:sub(i, i + step - 1) ~= b:sub(i, i + step - 1) then
      for j = i, math.min(i + step - 1, n) do
        if a:byte(j) ~= b:byte(j) then return j end
      end
    end
  end
  return n + 1
end

-- Runs `code` like H.spawn_peer and waits for it: output (stdout and stderr), exit code.
function H.child(code, ...)
  return H.spawn_peer(code, ...):finish()
end

-- Starts a long-running process in the background under `timeout <deadline>`
-- (H.PEER_DEADLINE unless given): `cmd` is a shell command line run from the
-- repository root, stdout and stderr merged into a pipe. Returns a server
-- object: srv.pid (the `timeout` process, which passes a TERM on to its
-- command), srv:line() reads one line of its output, srv:kill() ends it and
-- returns the rest of its output.
function H.start_bg(cmd, deadline)
  local script = string.format("echo $$; exec timeout %d %s 2>&1", deadline or H.PEER_DEADLINE, cmd)
  local srv = { pipe = assert(io.popen("exec sh -c " .. shell_quote(script), "r")) }
  srv.pid = math.tointeger(tonumber(srv.pipe:read("l")))
  function srv:line() return self.pipe:read("l") end
  function srv:kill()
    if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
    self.pid = nil
    local out = self.pipe:read("a")
    self.pipe:close()
    return out
  end
  return srv
end

-- The shell command that runs a Lua file (or `-e` chunk) of this repository
-- with the module paths of .busted and line-buffered stdout.
function H.lua_cmd(rest)
  local cpath = os.getenv("CSOCK_SPEC_CPATH") or "?.so"
  return string.format("env LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s %s",
    shell_quote(H.ROOT .. "/lua/?.lua;" .. H.ROOT .. "/lua/?/init.lua;" .. H.ROOT .. "/spec/?.lua;;"),
    shell_quote(H.ROOT .. "/" .. cpath .. ";;"), shell_quote("io.stdout:setvbuf('line')"), rest)
end

-- Resident memory of process pid (this process if nil) now, in KiB (VmRSS).
function H.rss_kib(pid)
  for line in io.lines("/proc/" .. (pid or "self") .. "/status") do
    local kib = line:match("^VmRSS:%s*(%d+)")
    if kib then return tonumber(kib) end
  end
end

return H
