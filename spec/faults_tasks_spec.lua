-- Faults: closing a socket while tasks wait on it, and a task that raises
-- while it holds a socket.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local MiB = 1048576

describe("closing a socket while tasks wait on it", function()
  it("the reader and the writer both get nil, 'closed'; using it afterwards raises", function()
    local c, s = H.tcp_pair()
    local rr, rw, raised
    csock.run(function()
      local reader = csock.spawn(function() return table.pack(s:recv()) end)
      local writer = csock.spawn(function() return table.pack(s:write(H.filled(64 * MiB, "z"))) end)
      csock.sleep(0.1)
      assert.are.equal("waiting", reader:status())
      assert.are.equal("waiting", writer:status())
      assert.are.equal(true, s:close())
      rr, rw = reader:join(), writer:join()
      raised = select(2, pcall(s.recv, s))
    end)
    assert.are.same({ n = 2, nil, "closed" }, rr)
    assert.are.same({ n = 2, nil, "closed" }, rw)
    assert.is_truthy(tostring(raised):find("attempt to use a closed socket", 1, true), tostring(raised))
    c:close()
    H.nothing_left()
  end)

  it("a task waiting in accept gets nil, 'closed'", function()
    local l = H.listener()
    local r
    csock.run(function()
      local t = csock.spawn(function() return table.pack(l:accept()) end)
      csock.sleep(0.05)
      l:close()
      r = t:join()
    end)
    assert.are.same({ n = 2, nil, "closed" }, r)
    H.nothing_left()
  end)
end)

describe("a task that raises while it holds a socket", function()
  it("local s <close>: the descriptor is closed when the task fails", function()
    local l, port = H.listener()
    collectgarbage()
    local before = H.count_fds()
    local reports = {}
    csock.onerror(function(err) reports[#reports + 1] = err end)
    local t
    csock.run(function()
      t = csock.spawn(function()
        local s <close> = csock.socket()
        s:settimeout(5)
        assert(s:connect("127.0.0.1", port))
        csock.sleep(0.01)
        error("boom")
      end)
      csock.sleep(0.1)
    end)
    assert.are.equal("failed", t:status())
    assert.are.equal(1, #reports)
    assert.is_truthy(reports[1]:find("boom", 1, true))
    -- no collectgarbage: <close> did it, not __gc
    assert.are.equal(before, H.count_fds())
    l:close()
    H.nothing_left()
  end)

  it("a csock.listen handler that raises: its connection is closed and the server goes on", function()
    local reports = {}
    csock.onerror(function(err) reports[#reports + 1] = err end)
    local before = H.count_fds()
    local answers, during
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        local line = conn:read("l")
        if line == "raise" then error("handler failed") end
        conn:write("ok ", line, "\n")
      end))
      local _, port = server:getsockname()
      local c1 = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
      c1:write("raise\n")
      answers = { table.pack(c1:read("l")) }
      local c2 = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
      c2:write("fine\n")
      answers[2] = table.pack(c2:read("l"))
      csock.sleep(0.05)
      during = server.connections
      c1:close(); c2:close()
      server:close()
    end)
    assert.are.same({ n = 2, nil, "closed" }, answers[1])
    assert.are.same({ n = 1, "ok fine" }, answers[2])
    assert.are.equal(0, during)
    assert.are.equal(1, #reports)
    assert.is_truthy(reports[1]:find("handler failed", 1, true))
    collectgarbage()
    assert.are.equal(before, H.count_fds())
    H.nothing_left()
  end)
end)
