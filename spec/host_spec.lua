-- The csock executable (bin/csock; CSOCK_BIN names another build, e.g. `make asan`'s) and the
-- embedding example (build/examples/embed, built by `make examples`, which `make test` runs).
-- Every child runs under `timeout`, every test under the watchdog; servers take free ports.
-- Run from the repo root (busted reads .busted there): busted spec/host_spec.lua
local csock = require "csock"
local H = require "helper"

local BIN = os.getenv("CSOCK_BIN") or "bin/csock"
local EMBED = "build/examples/embed" -- runs under the suite's CSOCK_BACKEND, as the rest
local DEADLINE = 20 -- seconds `timeout` gives any child (then SIGTERM, and SIGKILL 2 s later)

-- Files the tests write, removed after each test.
local made = {}

after_each(function()
  for _, path in ipairs(made) do os.remove(path) end
  made = {}
end)

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

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
  made[#made + 1] = base
  made[#made + 1] = base .. ".lua"
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

local VERSION_LINE = "^csock %S+ %(Lua 5%.4%.%d+%)  Copyright %(C%) 1994%-2022 Lua%.org, PUC%-Rio\n"

describe("csock script.lua args: like lua5.4", function()
  it("gives the script arg[0], arg[1..], arg[-1] and ... as lua5.4 does, and exits 0", function()
    local path = script([[
print(arg[0] == SELF, arg[1], arg[2], arg[3], #arg, arg[-1], arg[-2])
print(select("#", ...), ...)
]])
    writefile(path, (readfile(path):gsub("SELF", string.format("%q", path))))
    local out, err, code = run(q(path) .. " a 'b c'")
    assert.are.equal("true\ta\tb c\tnil\t2\t" .. BIN .. "\tnil\n2\ta\tb c\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local lua_out = run(q(path) .. " a 'b c'", { bin = "lua5.4" })
    assert.are.equal(out:gsub(BIN:gsub("%p", "%%%0"), "lua5.4"), lua_out)
  end)

  it("an error exits 1 with 'csock: <msg>' and a stack traceback on stderr", function()
    local path = script('local x = 1\nerror("boom")\n')
    local out, err, code = run(q(path))
    assert.are.equal("", out)
    local at = path .. ":" .. PRELUDE_LINES + 2
    assert.are.equal("csock: " .. at .. ": boom\nstack traceback:\n\t[C]: in function 'error'\n\t"
      .. at .. ": in main chunk\n", err)
    assert.are.equal(1, code)
  end)

  it("an error object that is not a string is named, or shown by its __tostring", function()
    local _, err, code = run("-e 'error({})'")
    assert.are.equal("csock: (error object is a table value)\n", err:match("^[^\n]*\n"))
    assert.are.equal(1, code)
    _, err, code = run([[-e 'error(setmetatable({}, { __tostring = function() return "custom" end }))']])
    assert.are.equal("csock: custom\n", err)
    assert.are.equal(1, code)
  end)

  it("a syntax error exits 1 with the message", function()
    local path = script("x = = 1\n")
    local out, err, code = run(q(path))
    assert.are.equal("", out)
    assert.are.equal("csock: " .. path .. ":" .. PRELUDE_LINES + 1 .. ": unexpected symbol near '='\n", err)
    assert.are.equal(1, code)
  end)

  it("a missing script exits 1 with 'cannot open'", function()
    local _, err, code = run("/nonexistent/x.lua")
    assert.are.equal("csock: cannot open /nonexistent/x.lua: No such file or directory\n", err)
    assert.are.equal(1, code)
  end)

  it("os.exit(3) exits 3, os.exit(false) exits 1, os.exit(true) exits 0", function()
    assert.are.equal(3, select(3, run("-e 'os.exit(3)'")))
    assert.are.equal(1, select(3, run("-e 'os.exit(false)'")))
    assert.are.equal(0, select(3, run("-e 'os.exit(true)'")))
  end)
end)

describe("csock options", function()
  it("-e runs a statement (several run in order, before the script)", function()
    local path = script("print('script', x)\n")
    local out, err, code = run("-e 'x = 1' -e 'x = x + 1; print(x)' " .. q(path))
    assert.are.equal("2\nscript\t2\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-l mod requires a module into global mod, -l g=mod into global g", function()
    local dir = tmpdir()
    writefile(dir .. "/mymod.lua", "return { answer = 42, name = ... }\n")
    local env = "LUA_PATH=" .. q(dir .. "/?.lua") .. " "
    local out, err, code = run("-l mymod -e 'print(mymod.answer, mymod.name)'", { env = env })
    assert.are.equal("42\tmymod\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    out, err, code = run("-l m=mymod -e 'print(m.answer, mymod)'", { env = env })
    assert.are.equal("42\tnil\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    out, err, code = run("-lmymod -e 'print(mymod.answer)'", { env = env })
    assert.are.equal("42\n", out)
    assert.are.equal(0, code)
    out, err, code = run("-l nosuchmod", { env = env })
    assert.are.equal("", out)
    assert.truthy(err:find("^csock: module 'nosuchmod' not found:"), err)
    assert.are.equal(1, code)
    os.execute("rm -r " .. q(dir))
  end)

  it("-v prints a version line naming csock and Lua 5.4, and exits 0", function()
    local out, err, code = run("-v")
    assert.truthy(out:find(VERSION_LINE .. "$"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-v with a script prints the version line, then runs the script", function()
    local out, _, code = run("-v -e 'print(1)'")
    assert.truthy(out:find(VERSION_LINE .. "1\n$"), out)
    assert.are.equal(0, code)
  end)

  it("- runs stdin, with the arguments after it", function()
    local out, err, code = run("- a b", { stdin = "print(arg[0], ...)\n" })
    assert.are.equal("-\ta\tb\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("no script and no -e: stdin that is not a terminal is run", function()
    local out, _, code = run("", { stdin = "print('from stdin', #arg)\n" })
    assert.are.equal("from stdin\t0\n", out)
    assert.are.equal(0, code)
  end)

  it("-- ends the options: what follows is the script and its arguments", function()
    local path = script("print(arg[-1], arg[1], ...)\n")
    local out, err, code = run("-- " .. q(path) .. " -v -e")
    assert.are.equal("--\t-v\t-v\t-e\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("--help lists the options on stdout and exits 0", function()
    local out, err, code = run("--help")
    assert.truthy(out:find("^usage: csock %[options%] %[script %[args%]%]\n"), out)
    for _, opt in ipairs({ "-e stat", "-l mod", "-l g=mod", "-v", "-i", "-E", "--workers N", "--grace S",
                           "--help", "--", "-" }) do
      assert.truthy(out:find("\n  " .. opt:gsub("%p", "%%%0") .. " ", 1), opt .. " missing from:\n" .. out)
    end
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("an unknown option exits 1 with a message and the usage on stderr", function()
    local out, err, code = run("--bogus x.lua")
    assert.are.equal("", out)
    assert.truthy(err:find("^csock: unrecognized option '%-%-bogus'\nusage: csock %[options%]"), err)
    assert.are.equal(1, code)
    out, err, code = run("-x")
    assert.truthy(err:find("^csock: unrecognized option '%-x'\nusage: "), err)
    assert.are.equal(1, code)
  end)

  it("an option without its argument exits 1 with the usage", function()
    for _, args in ipairs({ "-e", "-l", "--workers", "--grace", "-e -v" }) do
      local out, err, code = run(args)
      local opt = args:match("^%S+")
      assert.are.equal("", out)
      assert.truthy(err:find("^csock: '" .. opt:gsub("%p", "%%%0") .. "' needs an argument\nusage: "), err)
      assert.are.equal(1, code, args)
    end
  end)

  it("--workers and --grace reject bad values", function()
    for _, args in ipairs({ "--workers 0", "--workers 1.5", "--workers x", "--workers 2000",
                            "--grace -1", "--grace nan", "--grace 1s" }) do
      local out, err, code = run(args .. " -e 'print(1)'")
      local opt, value = args:match("^(%S+) (%S+)$")
      assert.are.equal("", out)
      assert.are.equal("csock: bad value '" .. value .. "' for " .. opt .. "\n", err)
      assert.are.equal(1, code, args)
    end
  end)

  it("LUA_INIT runs first; -E ignores it", function()
    local out, _, code = run("-e 'print(x)'", { env = "LUA_INIT='x = 7'" })
    assert.are.equal("7\n", out)
    assert.are.equal(0, code)
    out = run("-E -e 'print(x)'", { env = "LUA_INIT='x = 7'" })
    assert.are.equal("nil\n", out)
    out = run("-e 'print(x)'", { env = "LUA_INIT='x = 7' LUA_INIT_5_4='x = 8'" })
    assert.are.equal("8\n", out)
  end)

  it("-i reads lines from stdin (no readline), runs them and prints expression values", function()
    local out, err, code = run("-i", { stdin = "x = 3\nx * 2\nfor i = 1, 2 do\nprint(i)\nend\n'a', nil, 1\n" })
    local version, rest = out:match("^([^\n]*\n)(.*)$")
    assert.truthy(version:find(VERSION_LINE), version)
    assert.are.equal("> > 6\n> >> >> 1\n2\n> a\tnil\t1\n> \n", rest)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-i reports an error and goes on, and lets spawned tasks run between lines", function()
    local out, err, code = run("-i", {
      stdin = "error('oops')\nt = csock.spawn(function() print('in task') end)\nt:status()\n",
    })
    assert.are.equal("> > in task\n> done\n> \n", out:match("^[^\n]*\n(.*)$"))
    assert.truthy(err:find("^csock: stdin:1: oops\n"), err)
    assert.are.equal(0, code)
  end)
end)

describe("csock in scripts", function()
  it("is a global without require, and require 'csock' returns the same table", function()
    local out, _, code = run([[-e 'print(type(csock), require("csock") == csock, type(csock.listen), csock.worker)']])
    assert.are.equal("table\ttrue\tfunction\tnil\n", out)
    assert.are.equal(0, code)
  end)

  it("works with LUA_PATH and LUA_CPATH unset, the binary alone in another directory", function()
    local dir = tmpdir()
    assert(os.execute("cp " .. q(BIN) .. " " .. q(dir .. "/csock")))
    script([[
local s = assert(csock.listen("127.0.0.1", 0, function(conn) conn:write("pong ", conn:read("l"), "\n") end))
local _, port = s:getsockname()
csock.spawn(function()
  local c = assert(csock.connect("127.0.0.1", port))
  c:write("ping\n")
  print(c:read("l"), require("csock") == csock, type(require("csock.host").install), package.path:find("/work", 1, true))
  c:close()
  s:close()
end)
]], dir)
    -- cd first, then `timeout`: run() cannot put anything before `timeout`
    local o, e = os.tmpname(), os.tmpname()
    local _, _, code = os.execute(string.format(
      "cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT -u LUA_INIT_5_4 " ..
      "timeout %d ./csock script.lua </dev/null >%s 2>%s", q(dir), DEADLINE, q(o), q(e)))
    local out, err = readfile(o), readfile(e)
    os.remove(o); os.remove(e)
    os.execute("rm -r " .. q(dir))
    assert.are.equal("pong ping\ttrue\tfunction\tnil\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("loads C modules built for lua5.4 (lfs: busted depends on it)", function()
    local out, err, code = run([[-l lfs -e 'print(lfs.currentdir() == os.getenv("PWD"), lfs.attributes("spec", "mode"))']])
    assert.are.equal("true\tdirectory\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("an error in a task is reported and the loop goes on; the exit status stays 0", function()
    local out, err, code = run([[-e 'csock.spawn(function() error("in task") end)
csock.spawn(function() csock.sleep(0.1) print("later") end)']])
    assert.are.equal("later\n", out)
    assert.truthy(err:find("^csock: error in task: %(command line%):1: in task\nstack traceback:\n"), err)
    assert.are.equal(0, code)
  end)
end)

describe("the loop after the main chunk", function()
  it("runs a task the script only spawned (sleep 0.2 s, then print)", function()
    local path = script([[
csock.spawn(function() csock.sleep(0.2) print("woke") end)
print("main chunk done")
]])
    local out, err, code, elapsed = run(q(path))
    assert.are.equal("main chunk done\nwoke\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed >= 0.2 and elapsed < 3, "elapsed " .. elapsed)
  end)

  it("runs timers, and ends when none is left", function()
    local out, _, code = run([[-e 'local n = 0
csock.timer(0.05, function(t) n = n + 1; print("tick", n); if n == 3 then t:cancel() end end, 0.05)']])
    assert.are.equal("tick\t1\ntick\t2\ntick\t3\n", out)
    assert.are.equal(0, code)
  end)

  it("serves a script that only calls csock.listen until it is stopped", function()
    local path = script([[
local s = assert(csock.listen("127.0.0.1", 0, function(conn) conn:write("hi ", conn:read("l"), "\n") end))
ready("pid " .. getpid() .. " port " .. select(2, s:getsockname()))
]])
    local proc = start(q(path))
    local pid, port = pid_port(proc)
    for i = 1, 3 do
      local c = assert(connect(port))
      c:write("n" .. i .. "\n")
      assert.are.equal("hi n" .. i .. "\n", c:read("a"))
      c:close()
      H.sleep(0.1)
    end
    assert.is_true(alive(pid))
    kill("TERM", pid)
    local out, err, code = proc:finish()
    assert.are.equal("", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("a script that calls csock.run itself goes on after it when stopped", function()
    local path = script([[
local s = assert(csock.listen("127.0.0.1", 0, function() end))
ready("pid " .. getpid() .. " port " .. select(2, s:getsockname()))
csock.run()
print("after run")
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("TERM", pid)
    local out, err, code = proc:finish()
    assert.are.equal("after run\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)

-- Loop turns the host's scripts run into (each under both backends, whatever the suite's).
describe("the loop under csock.run and csock.step", function()
  local BACKENDS = { "epoll", "poll" }

  -- Runs a script under each backend; returns nothing, asserts out, err "" and exit 0 within 2 s.
  local function each_backend(body, expected)
    local path = script(body)
    for _, backend in ipairs(BACKENDS) do
      local out, err, code, elapsed = run(q(path), { env = "env CSOCK_BACKEND=" .. backend, deadline = 5 })
      assert.are.same({ expected, "", 0 }, { out, err, code }, "CSOCK_BACKEND=" .. backend)
      assert.is_true(elapsed < 2, "CSOCK_BACKEND=" .. backend .. ": elapsed " .. elapsed)
    end
  end

  it("a task woken for a connection whose listener another task closed in the same turn gets nil, 'closed'", function()
    -- x waits to read from a, y waits in accept on l. Then a gets a byte and l a connection,
    -- in that order, before the loop polls: one poll wakes x, then y; x closes l before y runs.
    each_backend([[
local lp = csock.socket(); assert(lp:bind("127.0.0.1", 0)); assert(lp:listen())
local a = csock.socket(); assert(a:connect("127.0.0.1", select(2, lp:getsockname())))
local b = assert(lp:accept())
local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
local x = csock.spawn(function() local byte = a:read(1); l:close(); return byte end)
local y = csock.spawn(function() return l:accept() end)
csock.step() -- both wait
assert(b:send("x"))
local c = csock.socket(); assert(c:connect("127.0.0.1", select(2, l:getsockname())))
csock.run()
print(x:status(), x:join())
print(y:status(), y:join())
]], "done\tx\ndone\tnil\tclosed\n")
  end)

  it("csock.run returns when the only task has finished (no wait with nothing alive)", function()
    each_backend([[
csock.spawn(function() end)
csock.run()
print("returned")
]], "returned\n")
  end)

  it("a task in accept whose listener is closed outside the loop ends; csock.run and the host return", function()
    each_backend([[
local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
local t = csock.spawn(function() return l:accept() end)
csock.step() -- t waits in accept
l:close()
csock.run()
print("returned", t:status(), t:join())
]], "returned\tdone\tnil\tclosed\n")
  end)

  it("csock.stop() inside a step leaves later steps free to wait and wake", function()
    each_backend([[
csock.spawn(function() csock.stop() end)
csock.step()
local woke = false
csock.spawn(function() csock.sleep(0.02) woke = true end)
local steps = 0
while not woke and steps < 40 do csock.step(0.05) steps = steps + 1 end
print("woke", woke)
local s = assert(csock.listen("127.0.0.1", 0, function(conn) conn:write("hi\n") end))
local got
csock.spawn(function()
  local c = assert(csock.connect("127.0.0.1", select(2, s:getsockname())))
  got = c:read("l")
  c:close()
  s:close()
end)
steps = 0
while not got and steps < 40 do csock.step(0.05) steps = steps + 1 end
print("got", got)
]], "woke\ttrue\ngot\thi\n")
  end)
end)

-- A server whose handler reads a line, prints "handling <line>", sleeps `delay` seconds
-- and answers "done <line>".
local SLOW_SERVER = [[
local delay = tonumber(arg[1])
local s = assert(csock.listen("127.0.0.1", 0, function(conn)
  local line = conn:read("l")
  if not line then return end
  print("handling " .. line)
  csock.sleep(delay)
  conn:write("done ", line, "\n")
end))
ready("pid " .. getpid() .. " port " .. select(2, s:getsockname()))
]]

describe("graceful stop", function()
  for _, sig in ipairs({ "TERM", "INT" }) do
    it("SIG" .. sig .. ": the request in flight gets its full answer, the listener closes, exit 0", function()
      local proc = start(q(script(SLOW_SERVER)) .. " 0.5")
      local pid, port = pid_port(proc)
      local c = assert(connect(port))
      c:write("req\n")
      assert.are.equal("handling req", proc:line())
      local t0 = H.now()
      kill(sig, pid)
      assert.truthy(refused(port, 0.3), "the listener still accepts after SIG" .. sig)
      assert.are.equal("done req\n", c:read("a"))
      c:close()
      local out, err, code = proc:finish()
      local elapsed = H.now() - t0
      assert.are.equal("", out)
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.is_true(elapsed >= 0.3 and elapsed < 3, "elapsed " .. elapsed)
    end)
  end

  it("--grace 0.2: a handler sleeping 2 s is cut off and the process exits 0 after about 0.2 s", function()
    local proc = start("--grace 0.2 " .. q(script(SLOW_SERVER)) .. " 2")
    local pid, port = pid_port(proc)
    local c = assert(connect(port))
    c:write("req\n")
    assert.are.equal("handling req", proc:line())
    local t0 = H.now()
    kill("TERM", pid)
    local out, err, code = proc:finish()
    local elapsed = H.now() - t0
    assert.are.equal("", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed >= 0.15 and elapsed < 1.5, "elapsed " .. elapsed)
    assert.are.equal("", c:read("a")) -- closed without an answer
    c:close()
  end)

  it("a second signal while handlers finish exits at once with status 1", function()
    local proc = start(q(script(SLOW_SERVER)) .. " 3")
    local pid, port = pid_port(proc)
    local c = assert(connect(port))
    c:write("req\n")
    assert.are.equal("handling req", proc:line())
    local t0 = H.now()
    kill("TERM", pid)
    assert.truthy(refused(port, 0.3))
    kill("INT", pid)
    local out, err, code = proc:finish()
    local elapsed = H.now() - t0
    assert.are.equal("", out)
    assert.are.equal("", err)
    assert.are.equal(1, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed)
    c:close()
  end)

  it("a connection arriving in the turn of SIGTERM, a request in flight: no task fails, exit 0", function()
    -- In the loop SIGTERM is held: sent first, it waits in the signalfd while a connection
    -- comes, and one poll sees both. The stop runs first, closes the listener and waits for the
    -- request in flight; the accept task, woken for the connection, then gets nil, "closed".
    local path = script([[
local s = assert(csock.listen("127.0.0.1", 0, function(conn)
  local line = conn:read("l")
  if line then csock.sleep(0.2) conn:write("done ", line, "\n") end
end))
local port = select(2, s:getsockname())
csock.spawn(function()
  local c1 = assert(csock.connect("127.0.0.1", port))
  c1:write("first\n")
  csock.sleep(0.05) -- its handler sleeps: the stop will wait for it
  os.execute("kill -TERM " .. getpid())
  local c2 = csock.socket()
  c2:connect("127.0.0.1", port)
  print(c1:read("l"))
end)
]])
    local out, err, code, elapsed = run(q(path), { deadline = 5 })
    assert.are.equal("done first\n", out)
    assert.are.equal("", err) -- not "error in task: ... attempt to use a closed socket"
    assert.are.equal(0, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed)
  end)

  it("SIGTERM while connections keep arriving: each is served, refused or reset; no task fails", function()
    local proc = start(q(script(SLOW_SERVER)) .. " 0")
    local pid, port = pid_port(proc)
    -- a peer that connects and sends a line again and again, until a connect fails (refused;
    -- or reset: a connection still in the backlog when the listener closes)
    local peer = H.spawn_peer([[
local csock = require "csock"
local port = math.tointeger(tonumber(arg[1]))
local n, deadline = 0, csock.gettime() + 10
print("started")
while csock.gettime() < deadline do
  local c, err = csock.connect("127.0.0.1", port, { timeout = 2 })
  if not c then print(err) break end
  c:write("x\n")
  local line = c:read("l")
  c:close()
  if line then n = n + 1 end
end
print(n > 0 and "served" or "none served")
]], port)
    assert.are.equal("started", peer:line())
    H.sleep(0.2)
    kill("TERM", pid)
    local pout, pcode = peer:finish()
    local out, err, code = proc:finish()
    local last = pout:match("^([^\n]*)\nserved\n$")
    assert.truthy(last == "connection refused" or last == "connection reset by peer", pout)
    assert.are.equal(0, pcode)
    assert.are.equal("", err) -- no "error in task: ... attempt to use a closed socket"
    assert.are.equal(0, code)
    assert.truthy(out:find("^handling x\n"), out)
  end)

  it("with nothing in flight, SIGTERM exits 0 at once", function()
    local proc = start(q(script(SLOW_SERVER)) .. " 3")
    local pid = pid_port(proc)
    local t0 = H.now()
    kill("TERM", pid)
    local _, err, code = proc:finish()
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(H.now() - t0 < 1, "elapsed " .. (H.now() - t0))
  end)
end)

describe("csock.signal", function()
  it("runs fn('USR1') as a task when the process gets SIGUSR1", function()
    local path = script([[
assert(csock.signal("USR1", function(name)
  print("got " .. name, coroutine.isyieldable())
  csock.sleep(0.01) -- a task: it may wait
  csock.stop()
end) == true)
csock.timer(30, function() end) -- keeps the loop going
ready("pid " .. getpid() .. " port 0")
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("USR1", pid)
    local out, err, code = proc:finish()
    assert.are.equal("got USR1\ttrue\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("accepts 'SIGUSR2' as well as 'USR2', and runs the handler once per signal", function()
    local path = script([[
local n = 0
csock.signal("SIGUSR2", function(name)
  n = n + 1
  print(name, n)
  if n == 2 then csock.stop() end
end)
csock.timer(30, function() end)
ready("pid " .. getpid() .. " port 0")
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("USR2", pid)
    assert.are.equal("USR2\t1", proc:line())
    kill("USR2", pid)
    local out, _, code = proc:finish()
    assert.are.equal("USR2\t2\n", out)
    assert.are.equal(0, code)
  end)

  it("csock.signal('USR1', nil) restores the default: SIGUSR1 kills the process", function()
    local path = script([[
csock.signal("USR1", function() print("handled") end)
assert(csock.signal("USR1", nil) == true)
csock.timer(30, function() end)
ready("pid " .. getpid() .. " port 0")
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("USR1", pid)
    local out, _, code, how = proc:finish()
    assert.are.equal("", out)
    assert.are.same({ "signal", 10 }, { how, code })
  end)

  it("a script's own TERM handler replaces the graceful stop", function()
    local path = script([[
csock.signal("TERM", function(name) print("own " .. name) csock.stop() end)
local s = assert(csock.listen("127.0.0.1", 0, function() end))
ready("pid " .. getpid() .. " port " .. select(2, s:getsockname()))
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("TERM", pid)
    local out, err, code = proc:finish()
    assert.are.equal("own TERM\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("an unknown signal name or a non-function handler raises", function()
    local out, _, code = run([[-e 'print(pcall(csock.signal, "NOPE", print))
print(pcall(csock.signal, "USR1", 42))
print(pcall(csock.signal, "KILL", print))']])
    local l1, l2, l3 = out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n$")
    assert.truthy(l1 and l1:find("^false\tbad argument #1 to '[%w.]*signal' %(unknown signal 'NOPE'%)$"), out)
    assert.truthy(l2 and l2:find("^false\tbad argument #2 to '[%w.]*signal' %(function expected, got number%)$"), out)
    assert.truthy(l3 and l3:find("^false\tbad argument #1 to '[%w.]*signal' %(unknown signal 'KILL'%)$"), out)
    assert.are.equal(0, code)
  end)
end)

-- csock takes over SIGINT/SIGTERM (the graceful stop) and csock.signal's signals only while
-- the loop runs (csock.run, csock.step, task:join, the host's run after the main chunk).
-- Anywhere else a signal has its usual effect, as under lua5.4.
describe("signals outside the loop", function()
  -- A script that prints "pid P port 0" from its main chunk, then `rest`.
  local function blocked(rest)
    return script('print("pid " .. getpid() .. " port 0")\n' .. rest)
  end

  -- Starts path under bin (BIN or lua5.4), sends sig once it printed its pid; returns how it
  -- ended: how, code, stderr.
  local function signalled(bin, path, sig)
    local proc = start(q(path), bin)
    local pid = pid_port(proc)
    kill(sig, pid)
    local _, err, code, how = proc:finish()
    return how, code, err
  end

  it("a script blocked outside the loop (a busy loop) dies of SIGTERM like under lua5.4", function()
    local path = blocked("while true do end\n")
    assert.are.same({ "signal", 15, "" }, { signalled("lua5.4", path, "TERM") })
    assert.are.same({ "signal", 15, "" }, { signalled(BIN, path, "TERM") })
  end)

  it("a script blocked outside the loop dies of SIGINT (lua5.4 raises 'interrupted!' instead)", function()
    -- `timeout` catches SIGINT, so its child starts with the default action even when busted
    -- runs with SIGINT ignored (a background job of a non-interactive shell)
    local path = blocked("while true do end\n")
    assert.are.same({ "signal", 2, "" }, { signalled(BIN, path, "INT") })
    -- lua5.4 catches SIGINT while it runs a chunk and makes it an error
    local how, code, err = signalled("lua5.4", path, "INT")
    assert.are.same({ "exit", 1 }, { how, code })
    assert.truthy(err:find("interrupted!", 1, true), err)
  end)

  it("a script blocked in io.read() dies of SIGTERM like under lua5.4", function()
    local fifo = os.tmpname()
    os.remove(fifo)
    made[#made + 1] = fifo
    assert(os.execute("mkfifo " .. q(fifo)))
    local path = blocked("print(io.read())\n")
    for _, bin in ipairs({ "lua5.4", BIN }) do
      -- stdin: the fifo, held open (and silent) by the test until the script is gone
      local proc = start(q(path) .. " <" .. q(fifo), bin)
      local writer = assert(io.open(fifo, "w"))
      local pid = pid_port(proc)
      kill("TERM", pid)
      local out, err, code, how = proc:finish()
      writer:close()
      assert.are.same({ "", "", "signal", 15 }, { out, err, how, code }, bin)
    end
  end)

  it("examples/tcp_server.lua waiting in a blocking accept dies of SIGTERM", function()
    local port = H.free_port()
    local proc = start("examples/tcp_server.lua " .. port)
    assert.are.equal("Listening on 127.0.0.1:" .. port, proc:line())
    kill("TERM", pid_of(BIN .. " examples/tcp_server.lua " .. port))
    local out, err, code, how = proc:finish()
    assert.are.same({ "", "", "signal", 15 }, { out, err, how, code })
  end)

  it("csock.signal's handler runs while the loop runs; once csock.run returned, SIGTERM kills", function()
    local path = script([[
csock.signal("TERM", function(name) print("handled " .. name) csock.stop() end)
csock.timer(30, function() end) -- keeps the loop going
ready("pid " .. getpid() .. " port 0")
csock.run()
print("outside the loop")
while true do end
]])
    local proc = start(q(path))
    local pid = pid_port(proc)
    kill("TERM", pid)
    assert.are.equal("handled TERM", proc:line())
    assert.are.equal("outside the loop", proc:line())
    kill("TERM", pid)
    local out, err, code, how = proc:finish()
    assert.are.same({ "", "", "signal", 15 }, { out, err, how, code })
  end)
end)

-- A server for --workers: greets each connection with "worker W pid P ppid PP pgid G
-- reuseport R"; then a line the client sends is a request: it prints "handling <line>",
-- sleeps 1 s and answers "done <line>".
local WORKER_SERVER = [[
local port = math.tointeger(tonumber(arg[1]))
local s
s = assert(csock.listen("127.0.0.1", port, function(conn)
  local f <close> = assert(io.open("/proc/self/stat"))
  local pid, ppid, pgid = f:read("a"):match("^(%d+) %b() %S+ (%d+) (%d+)")
  conn:write(("worker %d pid %s ppid %s pgid %s reuseport %s\n"):format(csock.worker, pid, ppid, pgid,
    tostring(s.socket:getoption("reuseport"))))
  local line = conn:read("l")
  if not line then return end
  print("handling " .. line)
  csock.sleep(1)
  conn:write("done ", line, "\n")
end))
]]

describe("csock --workers N", function()
  -- One greeting, or nil when no worker answers (not up yet, or just killed). With keep,
  -- the connection stays open and is returned too.
  local function ask(port, keep)
    local c = connect(port, 2)
    if not c then return nil end
    local line = c:read("l")
    if not keep then c:close() end
    local w, pid, ppid, pgid, rp =
      tostring(line):match("^worker (%d+) pid (%d+) ppid (%d+) pgid (%d+) reuseport (%a+)$")
    if not w then
      if keep then c:close() end
      return nil
    end
    return { worker = tonumber(w), pid = math.tointeger(tonumber(pid)), ppid = math.tointeger(tonumber(ppid)),
             pgid = math.tointeger(tonumber(pgid)), reuseport = rp }, keep and c or nil
  end

  -- Asks until pred(reply) holds (at most `tries` replies or `seconds`); returns the replies
  -- and whether pred held.
  local function ask_until(port, pred, tries, seconds)
    local replies, deadline = {}, H.now() + seconds
    while #replies < tries and H.now() < deadline do
      local r = ask(port)
      if r then
        replies[#replies + 1] = r
        if pred(r, replies) then return replies, true end
      end
      H.sleep(0.01) -- paced: a restart takes 0.1 s, in which a tight loop makes a thousand connections
    end
    return replies, false
  end

  it("both workers answer; a killed worker is replaced; SIGTERM stops them all and exits 0", function()
    local port = H.free_port()
    local proc = start("--workers 2 " .. q(script(WORKER_SERVER)) .. " " .. port)
    -- fresh connections until both worker ids have answered
    local pids = {}
    local replies, ok = ask_until(port, function(r)
      pids[r.worker] = r.pid
      return pids[1] and pids[2]
    end, 400, 10)
    assert.is_true(ok, "replies from " .. #replies .. " connections, not from both workers")
    local parent = replies[1].ppid
    for _, r in ipairs(replies) do
      assert.are.equal(parent, r.ppid)
      assert.are.equal(pids[r.worker], r.pid)
      assert.are.equal("true", r.reuseport)
    end
    assert.are_not.equal(pids[1], pids[2])
    local expected = { pids[1], pids[2] }
    table.sort(expected)
    assert.are.same(expected, children(parent))

    -- kill -9 worker 1: a new worker 1 answers within a few seconds
    kill(9, pids[1])
    local _, back = ask_until(port, function(r) return r.worker == 1 and r.pid ~= pids[1] end, 500, 5)
    assert.is_true(back, "no new worker 1 within 5 s; children now: " .. table.concat(children(parent), " ")
      .. "; stderr: " .. tostring(proc:stderr()))
    assert.is_false(alive(pids[1]))
    local now_children = children(parent)
    assert.are.equal(2, #now_children)
    assert.truthy(now_children[1] == pids[2] or now_children[2] == pids[2])
    assert.truthy(proc:stderr():find("csock: worker 1 (pid " .. pids[1] .. ") killed by signal 9; restarting",
      1, true), proc:stderr())

    -- SIGTERM to the parent: every worker stops, the parent exits 0
    local workers = children(parent)
    local t0 = H.now()
    kill("TERM", parent)
    local _, _, code = proc:finish()
    assert.are.equal(0, code)
    assert.is_true(H.now() - t0 < 4, "elapsed " .. (H.now() - t0))
    for _, pid in ipairs(workers) do assert.is_false(alive(pid), "worker " .. pid .. " left running") end
    assert.is_false(alive(parent))
    assert.truthy(refused(port, 0.5))
  end)

  it("without --workers, csock.worker is nil and csock.listen sets no reuseport", function()
    local out, err, code, elapsed = run([[-e 'local s = csock.listen("127.0.0.1", 0, function() end)
print(csock.worker, s.socket:getoption("reuseport")); s:close()']])
    assert.are.equal("nil\tfalse\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed) -- closing the only listener ends the loop
  end)

  it("csock.worker is CSOCK_WORKER as an integer, nil if unset or not an integer", function()
    for value, want in pairs({ ["3"] = "3", ["17"] = "17", [""] = "nil", ["x"] = "nil", ["1.5"] = "nil" }) do
      local out, err, code = run([[-e 'print(csock.worker)']], { env = "CSOCK_WORKER=" .. q(value) })
      assert.are.same({ want .. "\n", "", 0 }, { out, err, code }, "CSOCK_WORKER=" .. value)
    end
    local out = run([[-e 'print(csock.worker)']], { env = "env -u CSOCK_WORKER" })
    assert.are.equal("nil\n", out)
  end)

  it("a worker whose script fails at once is restarted after a pause, again and again", function()
    local path = script([[
local f <close> = assert(io.open("/proc/self/stat"))
io.stderr:write("up ", csock.worker, " ppid ", f:read("a"):match("^%d+ %b() %S+ (%d+)"), "\n")
error("broken")
]])
    local proc = start("--workers 1 " .. q(path))
    local parent = H.eventually(function() return (proc:stderr() or ""):match("^up 1 ppid (%d+)\n") end, 5)
    assert.truthy(parent, "the worker never started: " .. tostring(proc:stderr()))
    H.sleep(1.2)
    kill("TERM", parent)
    local _, err, code = proc:finish()
    assert.are.equal(0, code)
    local starts = select(2, err:gsub("up 1 ppid %d+\n", ""))
    local restarts = select(2, err:gsub("csock: worker 1 %(pid %d+%) exited with 1; restarting after a pause\n", ""))
    -- back-off 0.1, 0.2, 0.4, 0.8 s: 4 or 5 starts in 1.2 s, not hundreds
    assert.is_true(starts >= 3 and starts <= 6, "started " .. starts .. " times:\n" .. err)
    assert.is_true(restarts >= 2, err)
  end)

  -- Both workers' greetings (asking until each id has answered); fails after 10 s.
  local function both_workers(port, proc)
    local seen = {}
    local replies, ok = ask_until(port, function(r)
      seen[r.worker] = r
      return seen[1] and seen[2]
    end, 400, 10)
    assert.is_true(ok, "replies from " .. #replies .. " connections, not from both workers; stderr: "
      .. tostring(proc:stderr()))
    return seen[1], seen[2]
  end

  -- Kills with SIGKILL whatever is left of pids (after a test that failed).
  local function reap(pids)
    for _, pid in ipairs(pids) do
      if running(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
    end
  end

  it("a worker whose script finishes with status 0 is not restarted; --workers 2 -e 'print(1)' exits 0", function()
    local out, err, code, elapsed = run("--workers 2 -e 'print(1)'")
    assert.are.equal("1\n1\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed)
  end)

  it("a worker that finished is not restarted while the other one serves on", function()
    local port = H.free_port()
    local path = script('if csock.worker == 1 then print("worker 1 done") return end\n' .. WORKER_SERVER)
    local proc = start("--workers 2 " .. q(path) .. " " .. port)
    assert.are.equal("worker 1 done", proc:line())
    local first
    local replies = ask_until(port, function(r) first = first or r return false end, 20, 3)
    assert.is_true(#replies >= 10, #replies .. " replies")
    finally(function() reap({ first.pid }) end)
    for _, r in ipairs(replies) do assert.are.same({ 2, first.pid }, { r.worker, r.pid }) end
    assert.are.same({ first.pid }, children(first.ppid))
    kill("TERM", first.ppid)
    local _, err, code = proc:finish()
    assert.are.equal("", err) -- no "restarting"
    assert.are.equal(0, code)
  end)

  it("Ctrl-C to the parent's process group reaches only the parent: the request in flight completes, exit 0", function()
    local port = H.free_port()
    -- setsid: the parent leads a process group of its own, as a shell's foreground job does
    local proc = start("--workers 2 " .. q(script(WORKER_SERVER)) .. " " .. port, "setsid -w " .. BIN)
    local w1, w2 = both_workers(port, proc)
    local parent = w1.ppid
    finally(function() reap({ w1.pid, w2.pid }) end)
    assert.are.equal(parent, pgid_of(parent))
    -- each worker in a process group of its own, not the parent's
    assert.are.same({ w1.pid, w2.pid }, { w1.pgid, w2.pgid })
    local r, c = ask(port, true)
    assert.truthy(r, "no worker answered")
    c:write("hi\n")
    assert.are.equal("handling hi", proc:line())
    local t0 = H.now()
    kill("INT", "-" .. parent) -- what a terminal's ^C does: SIGINT to the foreground process group
    assert.are.equal("done hi\n", c:read("a"))
    c:close()
    local out, err, code = proc:finish()
    local elapsed = H.now() - t0
    assert.are.equal("", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed >= 0.5 and elapsed < 4, "elapsed " .. elapsed)
    assert.is_false(running(w1.pid))
    assert.is_false(running(w2.pid))
    assert.truthy(refused(port, 0.5))
  end)

  it("workers end when the parent is killed with SIGKILL: none is left and the port is refused", function()
    local port = H.free_port()
    local proc = start("--workers 2 --grace 1 " .. q(script(WORKER_SERVER)) .. " " .. port)
    local w1, w2 = both_workers(port, proc)
    finally(function() reap({ w1.pid, w2.pid }) end)
    kill(9, w1.ppid)
    -- within --grace + 1 s
    local gone = H.eventually(function() return not running(w1.pid) and not running(w2.pid) end, 2)
    assert.truthy(gone, "workers left running after kill -9 of their parent: "
      .. tostring(running(w1.pid) and w1.pid or "") .. " " .. tostring(running(w2.pid) and w2.pid or ""))
    assert.truthy(refused(port, 1))
    local out, _, code, how = proc:finish()
    assert.are.equal("", out)
    assert.are.same({ "signal", 9 }, { how, code })
  end)
end)

-- Every example runs under the executable as under lua5.4 (examples_spec.lua runs them with
-- lua5.4): one-shot pairs as two csock processes, loop servers until SIGTERM.
describe("examples under bin/csock", function()
  -- Runs the client again while it fails only because the server is not up yet.
  local function client(args)
    local out, err, code
    for _ = 1, 100 do
      out, err, code = run(args)
      local lower = ((out or "") .. (err or "")):lower()
      if code == 0 or not (lower:find("connection refused", 1, true) or
                           lower:find("no such file or directory", 1, true)) then break end
      H.sleep(0.05)
    end
    return out, err, code
  end

  -- A connection to a server that is still starting.
  local function connect_when_up(port)
    local c
    H.eventually(function() c = connect(port) return c end, 5)
    return assert(c, "nothing listens on " .. port)
  end

  -- Starts a loop server, lets fn(port) talk to it, stops it with SIGTERM; returns its output.
  local function with_server(name, fn)
    local port = H.free_port()
    local proc = start("examples/" .. name .. ".lua " .. port)
    fn(port)
    -- the server's pid: the csock child of `timeout`
    kill("TERM", pid_of(BIN .. " examples/" .. name .. ".lua " .. port))
    local out, err, code = proc:finish()
    assert.are.equal("", err)
    assert.are.equal(0, code)
    return out, port
  end

  it("each example's header says how to run it with bin/csock", function()
    local p = assert(io.popen("ls examples/*.lua"))
    local n = 0
    for path in p:lines() do
      local name = path:match("examples/(.-)%.lua$")
      local header = {}
      for line in io.lines(path) do
        if not line:find("^%-%-") then break end
        header[#header + 1] = line
      end
      assert.truthy(table.concat(header, "\n"):find("bin/csock examples/" .. name .. ".lua", 1, true),
        path .. " header:\n" .. table.concat(header, "\n"))
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 12, n .. " examples")
  end)

  it("tcp_server.lua and tcp_client.lua", function()
    local port = H.free_port()
    local server = start("examples/tcp_server.lua " .. port)
    local out, err, code = client("examples/tcp_client.lua " .. port)
    assert.are.same({ "Received: Hello, Client!\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on 127.0.0.1:" .. port .. "\nReceived: Hello, Server!\n", "", 0 }, { sout, serr, scode })
  end)

  it("udp_server.lua and udp_client.lua", function()
    local port = H.free_port("inet")
    local server = start("examples/udp_server.lua " .. port)
    local out, err, code = client("examples/udp_client.lua " .. port)
    assert.are.same({ "Received: HELLO, UDP\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on udp 127.0.0.1:" .. port .. "\nReceived: hello, udp\n", "", 0 }, { sout, serr, scode })
  end)

  it("unix_server.lua and unix_client.lua", function()
    local path = H.tmpname()
    local server = start("examples/unix_server.lua " .. q(path))
    local out, err, code = client("examples/unix_client.lua " .. q(path))
    assert.are.same({ "Received: Hello, Client! You sent 14 bytes\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on " .. path .. "\nReceived: Hello, Server!\n", "", 0 }, { sout, serr, scode })
  end)

  it("demo.lua (which runs the pair with the same interpreter)", function()
    local out, err, code = run("examples/demo.lua")
    assert.truthy(out:find("$ " .. BIN .. " examples/tcp_server.lua ", 1, true), out)
    assert.truthy(out:find("[client] Received: Hello, Client!\n", 1, true), out)
    assert.truthy(out:find("[server] Received: Hello, Server!\n", 1, true), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("echo_server.lua and echo_client.lua", function()
    local out, port = with_server("echo_server", function(port)
      connect_when_up(port):close()
      local cout, cerr, ccode = run("examples/echo_client.lua " .. port)
      assert.are.same({ "Connected\nReply: Echo: Hello Server!\n", "", 0 }, { cout, cerr, ccode })
    end)
    assert.are.equal("Server on port " .. port .. "\nClient connected\nClient disconnected\n" ..
      "Client connected\nReceived: Hello Server!\nClient disconnected\n", out)
  end)

  it("chat_server.lua passes a line to the other client", function()
    local names = {}
    local out, port = with_server("chat_server", function(port)
      local a = connect_when_up(port)
      H.sleep(0.1)
      local b = assert(connect(port))
      H.sleep(0.1)
      for i, c in ipairs({ a, b }) do
        local host, p = c:getsockname()
        names[i] = host .. ":" .. p
      end
      a:write("hi all\n")
      assert.are.equal(names[1] .. ": hi all", b:read("l"))
      a:close()
      H.sleep(0.1)
      b:close()
      H.sleep(0.1)
    end)
    assert.are.equal("Chat on port " .. port .. "\n" .. names[1] .. " joined\n" .. names[2] .. " joined\n" ..
      names[1] .. " left\n" .. names[2] .. " left\n", out)
  end)

  it("http_hello.lua answers a request", function()
    local out, port = with_server("http_hello", function(port)
      local c = connect_when_up(port)
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, World!\n"
      assert.are.equal(response .. response, c:read("a"))
      c:close()
    end)
    assert.are.equal("HTTP on port " .. port .. "\n", out)
  end)

  it("redis_lite.lua answers PING, SET and GET", function()
    local out, port = with_server("redis_lite", function(port)
      local c = connect_when_up(port)
      c:write("PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\nGET k\r\n")
      assert.are.equal("+PONG\r\n+OK\r\n$2\r\nv1\r\n", c:read(7 + 5 + 8))
      c:close()
    end)
    assert.are.equal("redis_lite on port " .. port .. "\n", out)
  end)
end)

describe("the embed example (examples/embed)", function()
  it("two states, one port each, own ids; QUIT stops each; the process exits 0", function()
    assert.truthy(readfile(EMBED), EMBED .. " is missing: run `make examples`")
    local proc = start("-n 2", EMBED)
    local ports = {}
    for i = 1, 2 do
      local line = proc:line()
      local n, port = tostring(line):match("^state(%d) listening on 127%.0%.0%.1:(%d+)$")
      assert.are.equal(tostring(i), n, tostring(line))
      ports[i] = math.tointeger(tonumber(port))
    end
    assert.are_not.equal(ports[1], ports[2])
    local function talk(i, lines)
      local c = assert(connect(ports[i]))
      local got = {}
      for _, l in ipairs(lines) do
        c:write(l, "\n")
        got[#got + 1] = c:read("l")
      end
      c:close()
      return got
    end
    assert.are.same({ "1 state1 HELLO", "2 state1 WORLD" }, talk(1, { "hello", "world" }))
    assert.are.same({ "1 state2 HELLO" }, talk(2, { "hello" }))
    assert.are.same({ "3 state1 AGAIN" }, talk(1, { "again" }))
    -- A client still connected when its state closes: the connection
    -- (its handler parked in a read) ends with the state, not the process.
    local idle = assert(connect(ports[1]))
    idle:write("idle\n")
    assert.are.equal("4 state1 IDLE", idle:read("l"))
    assert.are.same({ "bye" }, talk(1, { "QUIT" }))
    assert.are.equal("state1 stopped", proc:line())
    assert.truthy(refused(ports[1], 1))
    idle:settimeout(5)
    local line, err = idle:read("l")
    assert.are.same({ nil, "closed" }, { line, err })
    idle:close()
    assert.are.same({ "2 state2 STILL HERE" }, talk(2, { "still here" }))
    assert.are.same({ "bye" }, talk(2, { "QUIT" }))
    local out, err, code = proc:finish()
    assert.are.equal("state2 stopped\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("a state's task error goes to the host's error hook", function()
    assert.truthy(readfile(EMBED), EMBED .. " is missing: run `make examples`")
    local path = writefile(tmplua(), [[
csock.spawn(function() error("hook me") end)
csock.timer(0.05, function() host.quit() end)
return 0
]])
    local proc = start(q(path), EMBED)
    local out, err, code = proc:finish()
    assert.are.equal("state1 listening on 127.0.0.1:0\nstate1 stopped\n", out)
    assert.truthy(err:find("^%[state 1%] task failed: " .. path:gsub("%p", "%%%0") .. ":1: hook me\nstack traceback:\n"), err)
    assert.are.equal(0, code)
  end)
end)
