-- bin/csock and signals: the graceful stop on SIGTERM/SIGINT (--grace), csock.signal, and
-- signals outside the loop, which have their usual effect as under lua5.4.
-- Every child runs under `timeout`; servers take free ports. What the host specs share is in
-- spec/host_helper.lua. Run alone from the repo root (busted reads .busted there):
-- busted spec/host_signals_spec.lua
local H = require "helper"
local X = require "host_helper"
local csock = require "csock"

local q = H.shell_quote
local BIN, script, run, start, pid_port, kill = X.BIN, X.script, X.run, X.start, X.pid_port, X.kill
local connect, refused, pid_of = X.connect, X.refused, X.pid_of

-- A server whose handler reads a line, prints "handling <line>" (for the first request
-- only), sleeps `delay` seconds and answers "done <line>". A line per request would fill
-- the pipe of a test that floods the server and reads its output only at the end (64 KiB,
-- about 6,000 requests: a SIGTERM that a busy machine delivers a couple of seconds late),
-- and print would then block the whole loop, SIGTERM's handler included.
local SLOW_SERVER = [[
local delay = tonumber(arg[1])
local said = false
local s = assert(csock.listen("127.0.0.1", 0, function(conn)
  local line = conn:read("l")
  if not line then return end
  if not said then said = true print("handling " .. line) end
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

  it("SIGTERM after a handler returned: the output the loop still sends for it gets out whole", function()
    -- The handler queues 60,000 bytes and returns; the peer reads nothing yet, so close hands
    -- the kernel what fits (a few KB, with both buffers small) and the loop keeps sending the
    -- rest in the background (docs/api.md, close). The stop waits for that too.
    local proc = start(q(script([[
local s = assert(csock.listen("127.0.0.1", 0, function(conn)
  conn:setoption("sndbuf", 4096)
  if not conn:read("l") then return end
  for _ = 1, 60 do conn:write(string.rep("y", 1000)) end
  print("returning")
end))
ready("pid " .. getpid() .. " port " .. select(2, s:getsockname()))
]])))
    local pid, port = pid_port(proc)
    local c = assert(csock.socket())
    assert(c:setoption("rcvbuf", 4096))
    assert(c:connect("127.0.0.1", port))
    c:settimeout(H.TIMEOUT)
    c:write("req\n")
    assert.are.equal("returning", proc:line())
    kill("TERM", pid)
    assert.truthy(refused(port, 1), "the listener still accepts after SIGTERM")
    local data = c:read("a")
    c:close()
    local out, err, code = proc:finish()
    assert.are.same({ 60000, "", "", 0 }, { #data, out, err, code })
  end)

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
    -- The answer is read after the loop: the stop waits for the server's handlers, not for
    -- the script's own tasks, and stops the loop in the turn the handler returns, when a task
    -- reading the answer may not have had its turn yet.
    local path = script([[
local s = assert(csock.listen("127.0.0.1", 0, function(conn)
  local line = conn:read("l")
  if line then csock.sleep(0.2) conn:write("done ", line, "\n") end
end))
local port = select(2, s:getsockname())
local c1
csock.spawn(function()
  c1 = assert(csock.connect("127.0.0.1", port))
  c1:write("first\n")
  csock.sleep(0.05) -- its handler sleeps: the stop will wait for it
  os.execute("kill -TERM " .. getpid())
  local c2 = csock.socket()
  c2:connect("127.0.0.1", port)
end)
csock.run() -- until the stop
c1:settimeout(1)
print(c1:read("l"))
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
    assert.are.equal("handling x\n", out)
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
    H.remove_after_test(fifo)
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
