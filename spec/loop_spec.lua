-- The loop: tasks (spawn, run, join, status, step, stop), errors in tasks,
-- coroutines inside tasks, sleep and timers, conditions, and blocking calls
-- (timeouts, close, select, waitfd, getaddrinfo, connect) inside tasks.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local ETIMEDOUT = csock.errno.ETIMEDOUT

-- A task that counts every `every` seconds until `stop()` is called; it
-- returns the number of ticks when joined.
local function ticker(every)
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
-- ends without waiting", run in a child) fails that one test and does not
-- stall the whole suite.
local function settle() csock.sleep(0) end

-- "bad argument #n to '<anything>name' (msg)": the function's name in such
-- messages depends on the order Lua finds it in package.loaded.
local function badarg_pattern(n, name, msg)
  return "^bad argument #" .. n .. " to '[%w._]*" .. name .. "' %(" .. msg:gsub("%p", "%%%0") .. "%)$"
end

describe("csock.run and csock.spawn", function()
  it("runs three tasks sleeping 0.1, 0.2 and 0.3 s in about 0.3 s, not 0.6 s", function()
    local ended = {}
    local elapsed = H.timed(csock.run, function()
      local tasks = {}
      for i, s in ipairs { 0.3, 0.1, 0.2 } do
        tasks[i] = csock.spawn(function()
          csock.sleep(s)
          ended[#ended + 1] = s
        end)
      end
      for _, t in ipairs(tasks) do t:join() end
    end)
    assert.are.same({ 0.1, 0.2, 0.3 }, ended)
    assert.is_true(elapsed >= 0.29 and elapsed < 0.45, "elapsed " .. elapsed)
    H.nothing_left()
  end)

  it("passes spawn's extra arguments to the task, nils and all", function()
    local got
    csock.run(function()
      local t = csock.spawn(function(...)
        csock.sleep(0)
        got = table.pack(...)
      end, 1, nil, "three", nil)
      t:join()
    end)
    assert.are.same({ n = 4, 1, nil, "three", nil }, got)
    H.nothing_left()
  end)

  it("passes run's extra arguments to the main task and returns all its results", function()
    local r = table.pack(csock.run(function(a, b)
      csock.sleep(0.01)
      return a + b, nil, "x"
    end, 40, 2))
    assert.are.same({ n = 3, 42, nil, "x" }, r)
    H.nothing_left()
  end)

  it("returns the main task's results when every task ends without waiting", function()
    -- In a child: a loop that waits for nothing after the last task ends would hang.
    local out, code = H.child([[
      local csock = require "csock"
      local H = require "helper"
      for i = 1, 3 do
        print(csock.run(function(x)
          local t = csock.spawn(function(y) return y * 2 end, x)
          return t:join()
        end, i))
      end
      print(csock.run(function() return "plain" end))
      print(csock.spawn(function() return "joined outside" end):join())
      local c, s = H.tcp_pair()
      csock.run(function() c:write("written, closed") c:close() end)
      print(s:read("a"))
    ]])
    assert.are.equal("2\n4\n6\nplain\njoined outside\nwritten, closed\n", out)
    assert.are.equal(0, code)
  end)

  it("with no function and nothing to do returns at once", function()
    local elapsed, r = H.timed(csock.run)
    assert.are.equal(0, r.n)
    assert.is_true(elapsed < 0.1, "elapsed " .. elapsed)
  end)

  it("runs spawned tasks only when the loop runs, in spawn order", function()
    local order = {}
    csock.spawn(function() order[#order + 1] = "a" end)
    csock.spawn(function() order[#order + 1] = "b" end)
    assert.are.same({}, order)
    csock.run(function()
      order[#order + 1] = "main"
      csock.sleep(0)
    end)
    assert.are.same({ "a", "b", "main" }, order)
    H.nothing_left()
  end)

  it("raises the main task's error, with a traceback", function()
    local ok, err = pcall(csock.run, function()
      csock.sleep(0.01)
      error("main failed")
    end)
    assert.is_false(ok)
    assert.are.equal("string", type(err))
    assert.is_truthy(err:find("^[^\n]*loop_spec%.lua:%d+: main failed\nstack traceback:\n"), err)
    H.nothing_left()
  end)

  it("raises the main task's error even when it fails before waiting", function()
    local ok, err = pcall(csock.run, function() error("at once") end)
    assert.is_false(ok)
    assert.is_truthy(err:find("loop_spec%.lua:%d+: at once\nstack traceback:\n"), err)
    H.nothing_left()
  end)

  it("says what a non-string error object of the main task was", function()
    local ok, err = pcall(csock.run, function() error({}) end)
    assert.is_false(ok)
    assert.is_truthy(err:find("^%(error object is a table value%)\nstack traceback:\n"), err)
    H.nothing_left()
  end)

  it("raises when called from inside a task (the loop is already running)", function()
    local r = table.pack(csock.run(function()
      csock.sleep(0)
      return pcall(csock.run, function() end)
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(tostring(r[2]):find("csock.run: the loop is already running", 1, true), r[2])
    H.nothing_left()
  end)

  it("raises for a non-function first argument", function()
    H.assert_raises_match("bad argument #1 to '[%w._]*run' %(function expected", csock.run, 42)
    H.assert_raises_match("bad argument #1 to '[%w._]*spawn' %(function expected", csock.spawn, "x")
    H.nothing_left()
  end)
end)

describe("errors in tasks other than main", function()
  it("go to csock.onerror(handler) with the task, and the loop goes on", function()
    local reports = {}
    csock.onerror(function(err, task) reports[#reports + 1] = { err = err, task = task } end)
    local bad, after
    local r = table.pack(csock.run(function()
      bad = csock.spawn(function()
        csock.sleep(0.01)
        error("side failed")
      end)
      csock.sleep(0.05)
      after = "main still running"
      return "main done"
    end))
    assert.are.same({ n = 1, "main done" }, r)
    assert.are.equal("main still running", after)
    assert.are.equal(1, #reports)
    assert.are.equal(bad, reports[1].task)
    assert.is_truthy(reports[1].err:find("loop_spec%.lua:%d+: side failed\nstack traceback:\n"), reports[1].err)
    assert.are.equal("failed", bad:status())
    H.nothing_left()
  end)

  it("do not stop tasks that are running alongside", function()
    local reports = 0
    csock.onerror(function() reports = reports + 1 end)
    local r = table.pack(csock.run(function()
      local tick = ticker(0.01)
      for i = 1, 3 do
        csock.spawn(function()
          csock.sleep(0.01 * i)
          error("failure " .. i)
        end)
      end
      csock.sleep(0.1)
      return tick.stop()
    end))
    assert.are.equal(3, reports)
    assert.is_true(r[1] >= 5, "ticks " .. tostring(r[1]))
    H.nothing_left()
  end)

  it("csock.onerror(nil) removes the handler", function()
    local out, code = H.child([[
      local csock = require "csock"
      csock.onerror(function() print("handler called") end)
      csock.onerror(nil)
      csock.run(function()
        csock.spawn(function() error("nobody handles me") end)
        csock.sleep(0.02)
      end)
      print("run returned")
    ]])
    assert.is_nil(out:find("handler called", 1, true), out)
    assert.is_truthy(out:find("csock: error in task: ", 1, true), out)
    assert.is_truthy(out:find("run returned\n", 1, true), out)
    assert.are.equal(0, code)
  end)

  it("without a handler are printed to stderr with a traceback, and the loop goes on", function()
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write([[
      local csock = require "csock"
      local r = csock.run(function()
        local t = csock.spawn(function()
          csock.sleep(0.01)
          error("lost in a task")
        end)
        csock.sleep(0.05)
        return "main " .. t:status()
      end)
      print(r)
    ]])
    f:close()
    -- stderr alone, then stdout alone
    local p = assert(io.popen("timeout 10 " .. H.lua_cmd(file) .. " 2>&1 >/dev/null"))
    local err = p:read("a")
    local _, _, code = p:close()
    p = assert(io.popen("timeout 10 " .. H.lua_cmd(file) .. " 2>/dev/null"))
    local out = p:read("a")
    p:close()
    os.remove(file)
    assert.is_truthy(err:find("^csock: error in task: [^\n]*:%d+: lost in a task\nstack traceback:\n"), err)
    assert.is_truthy(err:find("in function <", 1, true), err)
    assert.are.equal("main failed\n", out)
    assert.are.equal(0, code)
  end)

  it("coroutine.yield called directly in a task is an error in that task", function()
    local reports = {}
    csock.onerror(function(err, task) reports[#reports + 1] = { err = err, task = task } end)
    local t
    local r = table.pack(csock.run(function()
      t = csock.spawn(function()
        coroutine.yield("not like this")
        return "never"
      end)
      csock.sleep(0.02)
      return "main done"
    end))
    assert.are.same({ n = 1, "main done" }, r)
    assert.are.equal(1, #reports)
    assert.are.equal(t, reports[1].task)
    assert.is_truthy(reports[1].err:find("^coroutine%.yield called directly in a csock task"), reports[1].err)
    assert.are.equal("failed", t:status())
    H.nothing_left()
  end)

  it("coroutine.yield directly in the main task makes run raise", function()
    local ok, err = pcall(csock.run, function() coroutine.yield() end)
    assert.is_false(ok)
    assert.is_truthy(err:find("^coroutine%.yield called directly in a csock task"), err)
    H.nothing_left()
  end)
end)

describe("a coroutine created inside a task", function()
  it("is not a task: csock.sleep in it blocks the whole loop", function()
    local r = table.pack(csock.run(function()
      local tick = ticker(0.01)
      csock.sleep(0.035)
      local co = coroutine.wrap(function()
        local before = tick.n
        local t0 = csock.now()
        csock.sleep(0.1)
        return before, tick.n, csock.now() - t0
      end)
      local before, after, slept = co()
      local stopped = tick.stop()
      return before, after, slept, stopped
    end))
    local before, after, slept, stopped = r[1], r[2], r[3], r[4]
    assert.are.equal(before, after, "other tasks ran while a coroutine slept")
    assert.is_true(slept >= 0.099, "slept " .. slept)
    assert.is_true(stopped >= before, "ticks " .. stopped)
    H.nothing_left()
  end)

  it("yields to the task as usual, and csock calls in it still work (blocking)", function()
    local c, s = H.tcp_pair()
    local r = table.pack(csock.run(function()
      local co = coroutine.wrap(function(a)
        local b = coroutine.yield(a + 1)
        assert(s:write("from the coroutine\n"))
        assert(s:flush())
        return b .. ":" .. assert(c:read("l"))
      end)
      local first = co(1)
      local second = co("b")
      settle()
      return first, second
    end))
    assert.are.same({ n = 2, 2, "b:from the coroutine" }, r)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("can not join from inside it while the loop runs", function()
    local r = table.pack(csock.run(function()
      local t = csock.spawn(function() csock.sleep(0.01) return "t" end)
      local ok, err = coroutine.wrap(function() return pcall(t.join, t) end)()
      return ok, err, t:join()
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(tostring(r[2]):find("the loop is already running", 1, true), r[2])
    assert.are.equal("t", r[3])
    H.nothing_left()
  end)
end)

describe("task:join", function()
  it("in a task waits for the task and returns its results", function()
    local r = table.pack(csock.run(function()
      local t = csock.spawn(function(a)
        csock.sleep(0.02)
        return a, nil, a * 2
      end, 21)
      return t:join()
    end))
    assert.are.same({ n = 3, 21, nil, 42 }, r)
    H.nothing_left()
  end)

  it("of a task already done returns its results again, at once", function()
    local r = table.pack(csock.run(function()
      local t = csock.spawn(function() return "x", "y" end)
      local a = table.pack(t:join())
      local b = table.pack(t:join())
      settle()
      return a, b, t:status()
    end))
    assert.are.same({ n = 2, "x", "y" }, r[1])
    assert.are.same({ n = 2, "x", "y" }, r[2])
    assert.are.equal("done", r[3])
    H.nothing_left()
  end)

  it("by several tasks wakes them all with the results", function()
    local got = {}
    csock.run(function()
      local t = csock.spawn(function()
        csock.sleep(0.02)
        return "shared"
      end)
      local joiners = {}
      for i = 1, 3 do
        joiners[i] = csock.spawn(function() got[i] = t:join() end)
      end
      for _, j in ipairs(joiners) do j:join() end
    end)
    assert.are.same({ "shared", "shared", "shared" }, got)
    H.nothing_left()
  end)

  it("of a failed task returns nil and its error, and the error is not reported", function()
    local reports = 0
    csock.onerror(function() reports = reports + 1 end)
    local r = table.pack(csock.run(function()
      local t = csock.spawn(function()
        csock.sleep(0.01)
        error("joined failure")
      end)
      return t:join()
    end))
    assert.are.equal(2, r.n)
    assert.is_nil(r[1])
    assert.is_truthy(r[2]:find("loop_spec%.lua:%d+: joined failure\nstack traceback:\n"), r[2])
    assert.are.equal(0, reports)
    H.nothing_left()
  end)

  it("outside a task runs the loop until the task ends", function()
    local others = 0
    csock.spawn(function()
      for _ = 1, 3 do
        csock.sleep(0.01)
        others = others + 1
      end
    end)
    local t = csock.spawn(function(a, b)
      csock.sleep(0.05)
      return a .. b
    end, "jo", "ined")
    assert.are.equal("ready", t:status())
    local elapsed, r = H.timed(t.join, t)
    assert.are.same({ n = 1, "joined" }, r)
    assert.are.equal(3, others)
    assert.is_true(elapsed >= 0.049 and elapsed < 1, "elapsed " .. elapsed)
    H.nothing_left()
  end)

  it("outside a task, of a failed task, returns nil and its error", function()
    csock.onerror(function() end)
    local t = csock.spawn(function()
      csock.sleep(0.01)
      error("failed while joined from outside")
    end)
    local r = table.pack(t:join())
    assert.are.equal(2, r.n)
    assert.is_nil(r[1])
    assert.is_truthy(r[2]:find("failed while joined from outside\nstack traceback:\n", 1, true), r[2])
    H.nothing_left()
  end)

  it("of itself raises 'a task cannot join itself'", function()
    local r = table.pack(csock.run(function()
      local me
      me = csock.spawn(function()
        csock.sleep(0)
        return pcall(me.join, me)
      end)
      return me:join()
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(tostring(r[2]):find("a task cannot join itself", 1, true), r[2])
    H.nothing_left()
  end)
end)

describe("task:status", function()
  it("is ready, running, waiting, then done or failed", function()
    csock.onerror(function() end)
    local seen = {}
    local cond = csock.cond()
    local t = csock.spawn(function()
      cond:wait()
      return "ok"
    end)
    local f = csock.spawn(function()
      csock.sleep(0.01)
      error("x")
    end)
    seen.before = t:status()
    csock.run(function()
      local me
      me = csock.spawn(function() seen.inside = me:status() end)
      csock.sleep(0)
      seen.waiting = t:status()
      assert.are.equal(1, cond:signal())
      seen.woken = t:status()
      f:join()
    end)
    seen.after, seen.failed = t:status(), f:status()
    assert.are.same({ before = "ready", inside = "running", waiting = "waiting", woken = "ready",
                      after = "done", failed = "failed" }, seen)
    H.nothing_left()
  end)

  it("has tostring 'csock.task (...)'", function()
    local t = csock.spawn(settle)
    assert.is_truthy(tostring(t):find("^csock%.task %("), tostring(t))
    t:join()
    H.nothing_left()
  end)
end)

describe("csock.step and csock.stop", function()
  it("step() runs one turn without waiting and says whether anything is left", function()
    local log = {}
    local t = csock.spawn(function()
      log[#log + 1] = "start"
      csock.sleep(0.05)
      log[#log + 1] = "end"
    end)
    local elapsed, r = H.timed(csock.step)
    assert.are.same({ n = 1, true }, r)
    assert.is_true(elapsed < 0.04, "elapsed " .. elapsed)
    assert.are.same({ "start" }, log)
    assert.are.equal("waiting", t:status())
    local deadline = csock.now() + 2
    local more = true
    while more and csock.now() < deadline do more = csock.step(0.5) end
    assert.is_false(more)
    assert.are.same({ "start", "end" }, log)
    assert.are.equal("done", t:status())
    H.nothing_left()
  end)

  it("step(timeout) waits at most timeout for something to happen", function()
    local t = csock.spawn(function() csock.sleep(1) end)
    local elapsed, r = H.timed(csock.step, 0.05) -- starts the task, which sleeps
    assert.are.same({ n = 1, true }, r)
    elapsed, r = H.timed(csock.step, 0.05)
    assert.are.same({ n = 1, true }, r)
    assert.is_true(elapsed >= 0.045 and elapsed < 0.5, "elapsed " .. elapsed)
    assert.are.equal("waiting", t:status())
    assert.are.same({}, { t:join() })
    H.nothing_left()
  end)

  it("step() with nothing to do returns false at once", function()
    local elapsed, r = H.timed(csock.step)
    assert.are.same({ n = 1, false }, r)
    assert.is_true(elapsed < 0.05, "elapsed " .. elapsed)
  end)

  it("step() inside a task raises (the loop is already running)", function()
    local r = table.pack(csock.run(function()
      csock.sleep(0)
      return pcall(csock.step)
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(tostring(r[2]):find("csock.step: the loop is already running", 1, true), r[2])
    H.nothing_left()
  end)

  it("stop() makes run return; what is left runs at the next run", function()
    local cond = csock.cond()
    local waiter = csock.spawn(function()
      local ok = cond:wait()
      return ok and "woken"
    end)
    local elapsed, r = H.timed(csock.run, function()
      csock.sleep(0.01)
      csock.stop()
      csock.sleep(0.3) -- not resumed by this run
      return "not reached"
    end)
    assert.are.equal(0, r.n)
    assert.is_true(elapsed < 1, "elapsed " .. elapsed)
    assert.are.equal("waiting", waiter:status())
    assert.is_true(csock.step()) -- both still there
    assert.are.equal(1, cond:signal())
    assert.are.same({ "woken" }, { waiter:join() })
    -- the stopped main task finishes its sleep only if run again: run it
    -- in a child instead, to see that stop() ends run even with a task that
    -- would sleep for ever
    local out, code = H.child([[
      local csock = require "csock"
      csock.spawn(function() csock.sleep(math.huge) end)
      csock.timer(1e300, function() end)
      local t0 = csock.now()
      csock.run(function() csock.sleep(0.02) csock.stop() end)
      print(csock.now() - t0 < 1)
    ]])
    assert.are.same({ "true\n", 0 }, { out, code })
    -- the main task of the first run is still sleeping: let it end
    assert.is_true(H.eventually(function() return not csock.step(0.2) end, 10))
    H.nothing_left()
  end)
end)

describe("csock.sleep", function()
  it("in a task suspends only that task", function()
    local r = table.pack(csock.run(function()
      local tick = ticker(0.01)
      local t0 = csock.now()
      csock.sleep(0.1)
      local slept = csock.now() - t0
      return slept, tick.stop()
    end))
    assert.is_true(r[1] >= 0.099 and r[1] < 0.5, "slept " .. r[1])
    assert.is_true(r[2] >= 5, "ticks " .. r[2])
    H.nothing_left()
  end)

  it("outside a task blocks for that long", function()
    local elapsed = H.timed(csock.sleep, 0.05)
    assert.is_true(elapsed >= 0.049 and elapsed < 0.5, "elapsed " .. elapsed)
  end)

  it("raises for a negative or NaN time, in a task or not", function()
    local pat = badarg_pattern(1, "sleep", "time must be a non-negative number")
    H.assert_raises_match(pat, csock.sleep, -1)
    H.assert_raises_match(pat, csock.sleep, 0 / 0)
    H.assert_raises_match(pat, csock.sleep, -math.huge)
    H.assert_raises_match("bad argument #1 to '[%w._]*sleep' %(number expected", csock.sleep, "soon")
    local r = table.pack(csock.run(function()
      csock.sleep(0)
      return pcall(csock.sleep, -0.5)
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(r[2]:find(pat), r[2])
    H.nothing_left()
  end)

  it("now() is monotonic float seconds", function()
    local a = csock.now()
    csock.sleep(0.02)
    local b = csock.now()
    assert.are.equal("float", math.type(a))
    assert.is_true(b - a >= 0.019, "elapsed " .. (b - a))
  end)
end)

describe("csock.timer", function()
  it("fires once after its delay, as a task of its own, with the timer as argument", function()
    local calls = {}
    local tm
    tm = csock.timer(0.05, function(arg)
      calls[#calls + 1] = { arg = arg, at = csock.now() }
      csock.sleep(0.01) -- a task: it may wait
      calls[#calls].slept = true
    end)
    assert.is_true(tm:active())
    local t0 = csock.now()
    csock.run()
    assert.are.equal(1, #calls)
    assert.are.equal(tm, calls[1].arg)
    assert.is_true(calls[1].slept)
    local at = calls[1].at - t0
    assert.is_true(at >= 0.049 and at < 0.5, "fired after " .. at)
    assert.is_false(tm:active())
    H.nothing_left()
  end)

  it("with a repeat interval fires every interval until cancelled", function()
    local times = {}
    local t0 = csock.now()
    local tm
    tm = csock.timer(0.02, function(self)
      times[#times + 1] = csock.now() - t0
      if #times == 5 then assert.are.equal(true, self:cancel()) end
    end, 0.02)
    local elapsed = H.timed(csock.run)
    assert.are.equal(5, #times)
    assert.is_false(tm:active())
    for i = 2, 5 do assert.is_true(times[i] > times[i - 1]) end
    assert.is_true(times[1] >= 0.019, "first at " .. times[1])
    assert.is_true(elapsed >= 0.099 and elapsed < 1, "elapsed " .. elapsed)
    H.nothing_left()
  end)

  it("cancelled before it fires never fires, and is inactive", function()
    local fired = false
    local tm = csock.timer(0.02, function() fired = true end)
    assert.is_true(tm:active())
    assert.are.equal(true, tm:cancel())
    assert.is_false(tm:active())
    assert.are.equal(true, tm:cancel()) -- again: still true
    local elapsed = H.timed(csock.run)
    assert.is_true(elapsed < 0.02, "run waited " .. elapsed)
    csock.sleep(0.04)
    assert.is_true(csock.step(0) == false)
    assert.is_false(fired)
  end)

  it("cancelled from a task before it fires never fires", function()
    local fired = false
    csock.run(function()
      local tm = csock.timer(0.05, function() fired = true end)
      csock.sleep(0.01)
      tm:cancel()
      csock.sleep(0.08)
    end)
    assert.is_false(fired)
    H.nothing_left()
  end)

  it("timers fire in the order of their deadlines", function()
    local order = {}
    for _, d in ipairs { 0.06, 0.02, 0.08, 0.04, 0.01 } do
      csock.timer(d, function() order[#order + 1] = d end)
    end
    csock.run()
    assert.are.same({ 0.01, 0.02, 0.04, 0.06, 0.08 }, order)
    H.nothing_left()
  end)

  it("keeps run going while it is active", function()
    local fired = false
    local elapsed = H.timed(csock.run, function()
      csock.timer(0.1, function() fired = true end)
      csock.sleep(0)
    end)
    assert.is_true(fired)
    assert.is_true(elapsed >= 0.099, "elapsed " .. elapsed)
    H.nothing_left()
  end)

  it("an error in its function is reported and the loop goes on", function()
    local reports = {}
    csock.onerror(function(err, task) reports[#reports + 1] = { err = err, task = task } end)
    local n = 0
    local tm = csock.timer(0.01, function(self)
      n = n + 1
      if n == 2 then error("timer failed") end
      if n == 4 then self:cancel() end
    end, 0.01)
    local later = false
    csock.timer(0.08, function() later = true end)
    csock.run()
    assert.are.equal(4, n)
    assert.is_true(later)
    assert.is_false(tm:active())
    assert.are.equal(1, #reports)
    assert.is_truthy(reports[1].err:find("loop_spec%.lua:%d+: timer failed\nstack traceback:\n"), reports[1].err)
    assert.are.equal("failed", reports[1].task:status())
    H.nothing_left()
  end)

  it("raises for negative or NaN times and a repeat interval <= 0", function()
    local fn = function() end
    local pat = badarg_pattern(1, "timer", "time must be a non-negative number")
    H.assert_raises_match(pat, csock.timer, -1, fn)
    H.assert_raises_match(pat, csock.timer, 0 / 0, fn)
    H.assert_raises_match(badarg_pattern(3, "timer", "repeat interval must be positive"), csock.timer, 1, fn, 0)
    H.assert_raises_match(badarg_pattern(3, "timer", "time must be a non-negative number"), csock.timer, 1, fn, -1)
    H.assert_raises_match(badarg_pattern(3, "timer", "time must be a non-negative number"), csock.timer, 1, fn, 0 / 0)
    H.assert_raises_match("bad argument #2 to '[%w._]*timer' %(function expected", csock.timer, 1, "fn")
    H.nothing_left()
  end)

  it("with huge times (inf, 1e300) does not hang once cancelled", function()
    local fired = false
    local a = csock.timer(math.huge, function() fired = true end)
    local b = csock.timer(1e300, function() fired = true end, 1e300)
    local c = csock.timer(0, function() fired = true end, math.huge)
    a:cancel(); b:cancel(); c:cancel()
    local elapsed = H.timed(csock.run)
    assert.is_true(elapsed < 0.1, "elapsed " .. elapsed)
    local r = table.pack(csock.run(function()
      local t = csock.timer(math.huge, function() fired = true end)
      csock.sleep(0.01)
      t:cancel()
      return "cancelled in a task"
    end))
    assert.are.same({ n = 1, "cancelled in a task" }, r)
    assert.is_false(fired)
    H.nothing_left()
  end)
end)

describe("timeouts inside tasks", function()
  it("a read with settimeout(0.2) returns nil, 'timeout', ETIMEDOUT while another task keeps ticking", function()
    local c, s = H.tcp_pair()
    local r = table.pack(csock.run(function()
      local tick = ticker(0.02)
      c:settimeout(0.2)
      local t0 = csock.now()
      local res = table.pack(c:read(10))
      local waited = csock.now() - t0
      local during = tick.n
      csock.sleep(0.1)
      return res, waited, during, tick.stop()
    end))
    local res, waited, during, total = r[1], r[2], r[3], r[4]
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, res)
    assert.is_true(waited >= 0.19 and waited < 0.6, "waited " .. waited)
    assert.is_true(during >= 6, "ticks during the read " .. during)
    assert.is_true(total >= during + 3, "ticks after the read " .. total - during)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("recv, accept and cond:wait time out on their own deadlines, in parallel", function()
    local c, s = H.tcp_pair()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local res = {}
    local elapsed = H.timed(csock.run, function()
      local tasks = {
        csock.spawn(function()
          c:settimeout(0.1)
          res.recv = table.pack(c:recv())
        end),
        csock.spawn(function()
          l:settimeout(0.15)
          res.accept = table.pack(l:accept())
        end),
        csock.spawn(function()
          res.cond = table.pack(csock.cond():wait(0.2))
        end),
      }
      for _, t in ipairs(tasks) do t:join() end
    end)
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, res.recv)
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, res.accept)
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, res.cond)
    assert.is_true(elapsed >= 0.19 and elapsed < 0.4, "elapsed " .. elapsed)
    c:close(); s:close(); l:close()
    H.nothing_left()
  end)
end)

describe("closing a socket wakes the tasks waiting on it", function()
  it("in read, accept and a blocked write: each gets nil, 'closed', and run returns", function()
    local c1, s1 = H.tcp_pair()
    local c2, s2 = H.tcp_pair()
    local l = csock.socket()
    l:settimeout(H.TIMEOUT)
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    c2:settimeout(H.TIMEOUT)
    local big = string.rep("w", 32 * 1048576) -- far more than the socket buffers hold
    local res, states = {}, {}
    local tasks
    local elapsed = H.timed(csock.run, function()
      tasks = {
        read = csock.spawn(function() res.read = table.pack(c1:read(1)) end),
        accept = csock.spawn(function() res.accept = table.pack(l:accept()) end),
        write = csock.spawn(function() res.write = table.pack(c2:write(big)) end),
      }
      csock.spawn(function()
        csock.sleep(0.1)
        for k, t in pairs(tasks) do states[k] = t:status() end
        c1:close(); l:close(); c2:close()
      end)
    end)
    assert.are.same({ read = "waiting", accept = "waiting", write = "waiting" }, states)
    assert.are.same({ n = 2, nil, "closed" }, res.read)
    assert.are.same({ n = 2, nil, "closed" }, res.accept)
    assert.are.same({ n = 2, nil, "closed" }, res.write)
    assert.is_true(elapsed >= 0.099 and elapsed < 2, "elapsed " .. elapsed)
    s1:close(); s2:close()
    H.nothing_left()
  end)

  it("wakes every waiter of the same socket", function()
    local c, s = H.tcp_pair()
    local res = {}
    csock.run(function()
      for i = 1, 3 do
        csock.spawn(function() res[i] = table.pack(c:recv()) end)
      end
      csock.sleep(0.02)
      c:close()
    end)
    for i = 1, 3 do assert.are.same({ n = 2, nil, "closed" }, res[i]) end
    s:close()
    H.nothing_left()
  end)
end)

describe("blocking calls inside tasks", function()
  it("csock.select waits without blocking other tasks, and returns what is ready", function()
    local c, s = H.unix_pair()
    local r = table.pack(csock.run(function()
      local tick = ticker(0.01)
      local t0 = csock.now()
      local timed_out = table.pack(csock.select({ c }, {}, 0.1))
      local waited = csock.now() - t0
      local during = tick.n
      csock.spawn(function()
        csock.sleep(0.05)
        assert(s:send("ping"))
      end)
      t0 = csock.now()
      local readable = table.pack(csock.select({ c }, {}, 2))
      local waited2 = csock.now() - t0
      return timed_out, waited, during, readable, waited2, c:recv(), tick.stop()
    end))
    local timed_out, waited, during, readable, waited2, data = r[1], r[2], r[3], r[4], r[5], r[6]
    assert.are.same({ n = 3, {}, {}, "timeout" }, timed_out)
    assert.is_true(waited >= 0.099 and waited < 0.5, "waited " .. waited)
    assert.is_true(during >= 5, "ticks during select " .. during)
    assert.are.equal(2, readable.n)
    assert.are.equal(c, readable[1][1])
    assert.are.equal(1, #readable[1])
    assert.are.same({}, readable[2])
    assert.is_true(waited2 >= 0.045 and waited2 < 1, "waited " .. waited2)
    assert.are.equal("ping", data)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("csock.waitfd on a socket's fd times out, then wakes when data comes, while others tick", function()
    local c, s = H.unix_pair()
    local fd = c:fileno()
    local r = table.pack(csock.run(function()
      local tick = ticker(0.01)
      local t0 = csock.now()
      local timed_out = table.pack(csock.waitfd(fd, "r", 0.1))
      local waited = csock.now() - t0
      local during = tick.n
      csock.spawn(function()
        csock.sleep(0.05)
        assert(s:send("data"))
      end)
      t0 = csock.now()
      local ready = table.pack(csock.waitfd(fd, "r", 2))
      local waited2 = csock.now() - t0
      local writable = table.pack(csock.waitfd(fd, "w", 2))
      return timed_out, waited, during, ready, waited2, writable, c:recv(), tick.stop()
    end))
    local timed_out, waited, during, ready, waited2, writable, data = table.unpack(r, 1, 7)
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, timed_out)
    assert.is_true(waited >= 0.099 and waited < 0.5, "waited " .. waited)
    assert.is_true(during >= 5, "ticks during waitfd " .. during)
    assert.are.same({ n = 1, true }, ready)
    assert.is_true(waited2 >= 0.045 and waited2 < 1, "waited " .. waited2)
    assert.are.same({ n = 1, true }, writable)
    assert.are.equal("data", data)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("csock.waitfd(fd, 'r') in a task does not return for an fd that is only writable", function()
    local c, s = H.tcp_pair()
    local r = table.pack(csock.run(function()
      csock.sleep(0)
      return csock.waitfd(c:fileno(), "r", 0.05)
    end))
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, r)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("csock.getaddrinfo('localhost') in a task returns what it returns outside", function()
    local outside = assert(csock.getaddrinfo("localhost", 80))
    local r = table.pack(csock.run(function()
      local tick = ticker(0.001)
      local inside = table.pack(csock.getaddrinfo("localhost", 80))
      tick.stop()
      return inside
    end))
    assert.are.equal(1, r.n)
    assert.is_true(#outside > 0)
    assert.are.same(table.pack(outside), r[1])
    H.nothing_left()
  end)

  it("csock.getaddrinfo of a name that does not resolve fails the same way in a task", function()
    local name = "no-such-host.invalid"
    local outside = table.pack(csock.getaddrinfo(name, 80))
    local inside = table.pack(csock.run(function() return csock.getaddrinfo(name, 80) end))
    assert.is_nil(outside[1])
    assert.are.same(outside, inside)
  end)

  it("csock.connect('localhost', port) in a task reaches a csock.listen server of the same loop", function()
    local server = assert(csock.listen("127.0.0.1", 0, function(conn)
      for line in conn:lines() do conn:write("echo ", line, "\n") end
    end))
    local _, port = server:getsockname()
    local r = table.pack(csock.run(function()
      local conn = assert(csock.connect("localhost", port, { timeout = H.TIMEOUT }))
      assert(conn:write("hello\n"))
      local line = conn:read("l")
      conn:close()
      server:close()
      return line
    end))
    assert.are.same({ n = 1, "echo hello" }, r)
    H.nothing_left()
  end)

  it("sock:connect to a name in a task", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    local r = table.pack(csock.run(function()
      local acc = csock.spawn(function()
        l:settimeout(H.TIMEOUT)
        local conn = assert(l:accept())
        local d = conn:recv()
        conn:close()
        return d
      end)
      local c = csock.socket()
      c:settimeout(H.TIMEOUT)
      assert(c:connect("localhost", port))
      assert(c:send("named"))
      c:close()
      return acc:join()
    end))
    assert.are.same({ n = 1, "named" }, r)
    l:close()
    H.nothing_left()
  end)
end)

describe("csock.cond", function()
  it("signal wakes the longest waiting task and returns how many it woke", function()
    local cond = csock.cond()
    local woke, counts = {}, {}
    csock.run(function()
      for i = 1, 3 do
        csock.spawn(function()
          assert.are.equal(true, cond:wait())
          woke[#woke + 1] = i
        end)
      end
      csock.sleep(0.01)
      counts[1] = cond:signal()
      csock.sleep(0.01)
      counts[2] = cond:signal()
      csock.sleep(0.01)
      counts[3] = cond:broadcast()
      counts[4] = cond:signal()
      counts[5] = cond:broadcast()
    end)
    assert.are.same({ 1, 2, 3 }, woke)
    assert.are.same({ 1, 1, 1, 0, 0 }, counts)
    H.nothing_left()
  end)

  it("broadcast wakes every waiter", function()
    local cond = csock.cond()
    local woke = 0
    local r = table.pack(csock.run(function()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = csock.spawn(function()
          cond:wait(H.TIMEOUT)
          woke = woke + 1
        end)
      end
      csock.sleep(0.01)
      local n = cond:broadcast()
      for _, t in ipairs(tasks) do t:join() end
      return n
    end))
    assert.are.same({ n = 1, 5 }, r)
    assert.are.equal(5, woke)
    H.nothing_left()
  end)

  it("wait(timeout) returns nil, 'timeout', ETIMEDOUT when nobody signals", function()
    local cond = csock.cond()
    local elapsed, r = H.timed(csock.run, function() return cond:wait(0.05) end)
    assert.are.same({ n = 3, nil, "timeout", ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.049 and elapsed < 0.5, "elapsed " .. elapsed)
    -- a waiter that timed out is not woken again (nor counted) by a later signal
    assert.are.equal(0, cond:signal())
    H.nothing_left()
  end)

  it("signalled before its timeout returns true", function()
    local cond = csock.cond()
    local r = table.pack(csock.run(function()
      csock.spawn(function()
        csock.sleep(0.02)
        cond:signal()
      end)
      return cond:wait(2)
    end))
    assert.are.same({ n = 1, true }, r)
    H.nothing_left()
  end)

  it("wait outside a task raises; signal outside a task works", function()
    local cond = csock.cond()
    local ok, err = pcall(cond.wait, cond)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("cond:wait outside a task", 1, true), err)
    assert.are.equal(0, cond:signal())
    assert.are.equal(0, cond:broadcast())
    local r = table.pack(csock.run(function()
      settle()
      return pcall(cond.wait, cond, -1)
    end))
    assert.are.equal(false, r[1])
    assert.is_truthy(r[2]:find("^bad argument #%d to '[^']*' %(time must be a non%-negative number%)$"), r[2])
    H.nothing_left()
  end)
end)

describe("the poll backend", function()
  it("csock.backend() is the one CSOCK_BACKEND asks for (epoll by default)", function()
    local want = os.getenv("CSOCK_BACKEND")
    if want == nil or want == "" then want = "epoll" end
    assert.are.equal(want, csock.backend())
  end)

  it("csock.pollfd() is the epoll fd, or nil and a message on the poll backend", function()
    local r = table.pack(csock.pollfd())
    if csock.backend() == "epoll" then
      assert.are.equal(1, r.n)
      assert.are.equal("integer", math.type(r[1]))
      local link = io.popen("readlink /proc/" .. H.PID .. "/fd/" .. r[1]):read("l")
      assert.are.equal("anon_inode:[eventpoll]", link)
    else
      assert.is_nil(r[1])
      assert.are.equal("string", type(r[2]))
    end
  end)

  it("is made when first needed: require opens no fd, a task's wait or csock.pollfd() makes it", function()
    -- A script that only makes blocking calls never needs the poller; making it (and the
    -- resolver's eventfd) at require was a tenth of the module's start-up.
    local out, code = H.child([[
      local csock = require "csock"
      local pid = io.open("/proc/self/stat"):read("n")
      local function kinds()
        local p = io.popen("ls -l /proc/" .. pid .. "/fd")
        local s = p:read("a")
        p:close()
        local _, polls = s:gsub("anon_inode:%[eventpoll%]", "")
        local _, events = s:gsub("anon_inode:%[eventfd%]", "")
        return polls .. "," .. events
      end
      print("require", kinds())
      local u = csock.socket("inet", "dgram") -- a call that waits, outside any task
      assert(u:bind("127.0.0.1", 0))
      u:settimeout(0.01)
      assert(select(2, u:recvfrom()) == "timeout")
      u:close()
      print("blocking", kinds())
      csock.spawn(function() csock.sleep(0.001) end)
      csock.run()
      print("task", kinds())
      csock.spawn(function() assert(csock.getaddrinfo("localhost", 80)) end)
      csock.run()
      print("lookup", kinds())
      print("pollfd", type(csock.pollfd()))
    ]])
    assert.are.equal(0, code, out)
    local epoll = csock.backend() == "epoll" and 1 or 0
    assert.are.equal(("require\t0,0\nblocking\t0,0\ntask\t%d,0\nlookup\t%d,1\npollfd\t%s\n")
      :format(epoll, epoll, epoll == 1 and "number" or "nil"), out)
  end)

  it("an unknown CSOCK_BACKEND makes require fail", function()
    local p = assert(io.popen("CSOCK_BACKEND=kqueue-nope " ..
      H.lua_cmd("-e 'print(pcall(require, \"csock\"))' 2>&1")))
    local out = p:read("a")
    p:close()
    assert.is_truthy(out:find("^false\t[^\n]*unknown poll backend 'kqueue%-nope'"), out)
  end)
end)

describe("regressions in the loop", function()
  it("a peer's last bytes and its FIN reported in one event still end the reader with 'closed'", function()
    -- The short read of the last bytes used to mark the socket drained, and the FIN that came
    -- with them sends no new edge: the reader waited for its timeout instead of seeing EOF.
    local server = assert(csock.listen("127.0.0.1", 0, function(conn)
      conn:write("hi\n")
      csock.sleep(0.05)
      conn:write("bye\n") -- then the handler returns: bytes and FIN leave together
    end))
    local _, port = server:getsockname()
    local got
    csock.run(function()
      local c = csock.socket()
      c:settimeout(2)
      assert(c:connect("127.0.0.1", port))
      got = { c:read("l"), c:read("l"), table.pack(c:read("l")) }
      c:close()
      server:close()
    end)
    assert.are.same({ "hi", "bye", { n = 2, nil, "closed" } }, got)
  end)
end)
