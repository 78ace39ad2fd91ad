-- csock.cond: conditions tasks wait on and signal.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local ETIMEDOUT = csock.errno.ETIMEDOUT
local settle = H.settle

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
