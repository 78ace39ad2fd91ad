-- What a script run by bin/csock finds (csock as a global, a binary that works alone, C
-- modules), and the loop the host runs after the main chunk or under csock.run/csock.step.
-- Every child runs under `timeout`; servers take free ports. What the host specs share is in
-- spec/host_helper.lua. Run alone from the repo root (busted reads .busted there):
-- busted spec/host_scripts_spec.lua
local H = require "helper"
local X = require "host_helper"

local q = H.shell_quote
local BIN, DEADLINE, readfile, tmpdir, script = X.BIN, X.DEADLINE, X.readfile, X.tmpdir, X.script
local run, start, pid_port, kill, connect = X.run, X.start, X.pid_port, X.kill, X.connect
local alive = X.alive

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
