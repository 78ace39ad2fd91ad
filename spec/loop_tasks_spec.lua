-- The loop's tasks: csock.run and csock.spawn, task:join, task:status,
-- csock.step and csock.stop.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local settle = H.settle

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
    assert.is_truthy(err:find("^[^\n]*loop_tasks_spec%.lua:%d+: main failed\nstack traceback:\n"), err)
    H.nothing_left()
  end)

  it("raises the main task's error even when it fails before waiting", function()
    local ok, err = pcall(csock.run, function() error("at once") end)
    assert.is_false(ok)
    assert.is_truthy(err:find("loop_tasks_spec%.lua:%d+: at once\nstack traceback:\n"), err)
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
    assert.is_truthy(r[2]:find("loop_tasks_spec%.lua:%d+: joined failure\nstack traceback:\n"), r[2])
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
