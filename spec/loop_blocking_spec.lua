-- Blocking calls inside tasks: timeouts, closing a socket under the tasks
-- that wait on it, select, waitfd, getaddrinfo, connect; and the loop's
-- regressions.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

local ETIMEDOUT = csock.errno.ETIMEDOUT
local ticker = H.ticker

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
