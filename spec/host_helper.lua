-- spec/host_helper.lua: what the host specs (spec/host_*_spec.lua) share to run the csock
-- executable (bin/csock; CSOCK_BIN names another build, e.g. `make asan`'s) and the embedding
-- example (build/examples/embed, built by `make examples`, which `make test` runs), and to
-- watch the processes they start. Every child runs under `timeout`. A spec file takes the
-- names it uses: local run, start = X.run, X.start (X = require "host_helper").
local csock = require "csock"
local H = require "helper"

local q = H.shell_quote

local BIN = os.getenv("CSOCK_BIN") or "bin/csock"
local EMBED = "build/examples/embed" -- runs under the suite's CSOCK_BACKEND, as the rest
local DEADLINE = 20 -- seconds `timeout` gives any child (then SIGTERM, and SIGKILL 2 s later)

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function writefile(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. q(dir)))
  return dir
end

-- Every script a test writes starts like this: line-buffered stdout (so the test sees
-- each line as it is printed), getpid() from /proc, and ready(line), which prints line from
-- a task, so once the loop runs: csock takes over the signals it handles (SIGINT, SIGTERM,
-- csock.signal's) only while the loop runs, and a signal sent after a line printed by the
-- main chunk itself could come before the loop starts, and kill the script as under lua5.4.
local PRELUDE = [[
io.stdout:setvbuf("line")
local function getpid()
  local f <close> = assert(io.open("/proc/self/stat"))
  return math.tointeger(f:read("n"))
end
local function ready(line) csock.spawn(function() print(line) end) end
]]
local PRELUDE_LINES = select(2, PRELUDE:gsub("\n", "")) -- a script's own lines come after these

-- A fresh temporary file name ending in ".lua" (removed after the test).
local function tmplua()
  local base = os.tmpname()
  H.remove_after_test(base, base .. ".lua")
  return base .. ".lua"
end

local function script(body, dir)
  local path = dir and (dir .. "/script.lua") or tmplua()
  return writefile(path, PRELUDE .. body)
end

-- Runs `BIN args` to the end: stdout, stderr, exit code (or signal number, with how = "signal"),
-- elapsed seconds. opts.stdin: text for its stdin (default: /dev/null); opts.env: assignments
-- put before the command; opts.bin: another executable; opts.deadline: instead of DEADLINE.
local function run(args, opts)
  opts = opts or {}
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  writefile(inp, opts.stdin or "")
  local cmd = string.format("%s timeout -k 2 %d %s %s <%s >%s 2>%s", opts.env or "", opts.deadline or DEADLINE,
    opts.bin or BIN, args, q(inp), q(out), q(err))
  local t0 = H.now()
  local _, how, code = os.execute(cmd)
  local elapsed = H.now() - t0
  local o, e = readfile(out), readfile(err)
  os.remove(out); os.remove(err); os.remove(inp)
  return o, e, code, elapsed, how
end

-- Starts `BIN args` (or bin; env: e.g. "env VAR=value") in the background: proc:line() reads
-- a line of its stdout, proc:finish() waits for the end and returns the rest of stdout, stderr,
-- exit code, how ("exit" or "signal"), and the seconds finish() waited.
local function start(args, bin, env)
  local err = os.tmpname()
  local cmd = string.format("exec %s timeout -k 2 %d %s %s 2>%s", env or "", DEADLINE, bin or BIN, args, q(err))
  local proc = { pipe = assert(io.popen(cmd, "r")) }
  function proc:line() return self.pipe:read("l") end
  function proc:stderr() return readfile(err) end
  function proc:finish()
    local t0 = H.now()
    local out = self.pipe:read("a")
    local _, how, code = self.pipe:close()
    local e = readfile(err)
    os.remove(err)
    return out, e, code, how, H.now() - t0
  end
  return proc
end

-- A script's first line "pid P port N" (the server scripts below print it).
local function pid_port(proc)
  local line = proc:line()
  local pid, port = tostring(line):match("^pid (%d+) port (%d+)$")
  assert(pid, "expected 'pid P port N', got " .. tostring(line) .. "\n" .. (proc:stderr() or ""))
  return math.tointeger(tonumber(pid)), math.tointeger(tonumber(port))
end

local function kill(sig, pid)
  assert(os.execute("kill -" .. sig .. " " .. pid))
end

local function connect(port, timeout)
  return csock.connect("127.0.0.1", port, { timeout = timeout or H.TIMEOUT })
end

-- True once a connect to port is refused (each probe that gets in is closed at once). The
-- tests probe right after a signal: a probe arriving in the loop turn that stops the server
-- must find the listener open or refused, never make the accept task fail.
local function refused(port, seconds)
  return H.eventually(function()
    local c, err = connect(port, 1)
    if c then c:close() return false end
    return err == "connection refused"
  end, seconds)
end

local function alive(pid)
  return readfile("/proc/" .. pid .. "/stat") ~= nil
end

-- True while pid runs (not gone, not a zombie: a worker whose parent died is reparented,
-- and nothing may reap it at once).
local function running(pid)
  local stat = readfile("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- The process group of pid (nil once it is gone).
local function pgid_of(pid)
  local stat = readfile("/proc/" .. pid .. "/stat")
  return stat and math.tointeger(tonumber(stat:match("^%d+ %b() %a %d+ (%d+)")))
end

-- The pid of the newest process whose command line is exactly `cmdline` (waits up to 2 s).
local function pid_of(cmdline)
  local pid
  H.eventually(function()
    local p = assert(io.popen("env -u LD_PRELOAD pgrep -f -n -- " .. q("^" .. cmdline:gsub("[][.()*+?^${}|\\]", "\\%0") .. "$")))
    pid = math.tointeger(tonumber(p:read("l")))
    p:close()
    return pid
  end, 2)
  return assert(pid, "no process runs " .. cmdline)
end

-- The pids of a process's children (every thread's children file).
local function children(pid)
  local p = assert(io.popen("cat /proc/" .. pid .. "/task/*/children 2>/dev/null"))
  local list = {}
  for n in p:read("a"):gmatch("%d+") do list[#list + 1] = math.tointeger(tonumber(n)) end
  p:close()
  table.sort(list)
  return list
end

return {
  BIN = BIN, EMBED = EMBED, DEADLINE = DEADLINE,
  readfile = readfile, writefile = writefile, tmpdir = tmpdir,
  PRELUDE = PRELUDE, PRELUDE_LINES = PRELUDE_LINES, tmplua = tmplua, script = script,
  run = run, start = start, pid_port = pid_port, kill = kill,
  connect = connect, refused = refused,
  alive = alive, running = running, pgid_of = pgid_of, pid_of = pid_of, children = children,
}
