-- Errors in tasks (csock.onerror, stderr, coroutine.yield where it cannot
-- go), and coroutines created inside a task.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local ticker, settle = H.ticker, H.settle

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
    assert.is_truthy(reports[1].err:find("loop_errors_spec%.lua:%d+: side failed\nstack traceback:\n"), reports[1].err)
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
