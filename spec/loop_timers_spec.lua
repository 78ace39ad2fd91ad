-- Time in the loop: csock.sleep and csock.timer.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local ticker = H.ticker

-- "bad argument #n to '<anything>name' (msg)": the function's name in such
-- messages depends on the order Lua finds it in package.loaded.
local function badarg_pattern(n, name, msg)
  return "^bad argument #" .. n .. " to '[%w._]*" .. name .. "' %(" .. msg:gsub("%p", "%%%0") .. "%)$"
end

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
    assert.is_truthy(reports[1].err:find("loop_timers_spec%.lua:%d+: timer failed\nstack traceback:\n"), reports[1].err)
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
