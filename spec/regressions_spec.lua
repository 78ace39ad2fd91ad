-- Regressions: one test per bug already fixed, named after what broke, so
-- that it cannot come back unnoticed. Each reproduces the original
-- situation (see the commit named in the comment) and asserts the exact
-- outcome. The UBSan one matters most under `make asan`.
local csock = require "csock"
local H = require "helper"

local E = csock.errno

-- Sends `pieces` from a task of its own, one per `every` seconds (so the
-- reader has to wait, and yield, between them), then closes c.
local function trickle(c, pieces, every)
  return csock.spawn(function()
    for _, p in ipairs(pieces) do
      csock.sleep(every)
      assert(c:send(p) == #p)
    end
    csock.sleep(every)
    c:close()
  end)
end

-- 37617942 "csock.listen, select and waitfd inside tasks, chunks()": recv
-- built its result in a luaL_Buffer; the buffer's to-be-closed box stayed on
-- the stack across the yield of a later wait, and Lua 5.4.4 then closed a
-- stale slot when the for loop ended ("attempt to call a nil value").
describe("recv as a for-iterator after a yield in a task (luaL_Buffer box + yield broke the stack)", function()
  -- pieces bigger than LUAL_BUFFERSIZE (the box is only made past it)
  local pieces = { string.rep("a", 5000), string.rep("b", 70000), string.rep("c", 3000), string.rep("d", 20000) }
  local all = table.concat(pieces)

  it("for data in conn:chunks(100000) collects every byte, and the loop ends cleanly", function()
    local c, s = H.tcp_pair()
    local got, after
    csock.run(function()
      trickle(c, pieces, 0.02)
      local parts = {}
      for data in s:chunks(100000) do parts[#parts + 1] = data end
      got = table.concat(parts)
      after = table.pack(s:recv())
    end)
    assert.are.equal(#all, #got)
    assert.is_true(got == all)
    assert.are.same({ n = 2, nil, "closed" }, after)
    s:close()
    H.nothing_left()
  end)

  it("a closure around recv in a generic for with a to-be-closed value: closed once, no stale slot", function()
    local c, s = H.tcp_pair()
    local got, closed = nil, 0
    csock.run(function()
      trickle(c, pieces, 0.02)
      local closer = setmetatable({}, { __close = function() closed = closed + 1 end })
      local parts = {}
      for data in function() return s:recv(100000) end, nil, nil, closer do
        local guard <close> = setmetatable({}, { __close = function() end })
        parts[#parts + 1] = data
        csock.sleep(0) -- a yield inside the body as well
      end
      got = table.concat(parts)
    end)
    assert.are.equal(1, closed)
    assert.is_true(got == all)
    s:close()
    H.nothing_left()
  end)

  it("breaking out of the for loop mid-stream (the to-be-closed value runs at the break)", function()
    local c, s = H.tcp_pair()
    local first, closed = nil, 0
    csock.run(function()
      local t = trickle(c, pieces, 0.02)
      local closer = setmetatable({}, { __close = function() closed = closed + 1 end })
      for data in function() return s:recv(100000) end, nil, nil, closer do
        first = data
        break
      end
      t:join()
    end)
    assert.are.equal(1, closed)
    assert.are.equal(pieces[1], first)
    s:close()
    H.nothing_left()
  end)
end)

-- 1c98c58 "buffer null-pointer fix" and 84b9c7a (found again by the reader
-- fuzzer): csock_buf_head did pointer arithmetic on a receive buffer that
-- was never allocated. Every read path on a socket that never buffered a
-- byte; under `make asan` UBSan aborts on the arithmetic itself.
describe("read on a never-used socket with UBSan (NULL buffer arithmetic)", function()
  it("read(0), read('a'), read('l'), read(5), lines and recv on fresh sockets", function()
    local c, s = H.tcp_pair()
    assert.are.same({ n = 1, "" }, table.pack(s:read(0)))   -- nothing buffered, no EOF known
    c:close()
    assert.are.same({ n = 1, "" }, table.pack(s:read("a"))) -- at EOF: "" like file:read("a")
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read(0)))
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read("l")))
    s:close()

    c, s = H.tcp_pair()
    c:close()
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read("L")))
    s:close()

    c, s = H.tcp_pair()
    c:close()
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read(5)))
    s:close()

    c, s = H.tcp_pair()
    c:close()
    local n = 0
    for _ in s:lines() do n = n + 1 end
    assert.are.equal(0, n)
    s:close()

    c, s = H.tcp_pair()
    c:close()
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:recv()))
    s:close()
  end)

  it("the same in a task, and with settimeout(0) on an idle socket", function()
    local c, s = H.tcp_pair()
    local r = {}
    csock.run(function()
      s:settimeout(0)
      r[1] = table.pack(s:read("l"))   -- nothing there: timeout, nothing buffered
      r[2] = table.pack(s:read(0))
      r[3] = table.pack(s:recv())
      c:close()
      s:settimeout(1)
      r[4] = table.pack(s:read("a"))
      r[5] = table.pack(s:read("l"))
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r[1])
    assert.are.same({ n = 1, "" }, r[2])
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r[3])
    assert.are.same({ n = 1, "" }, r[4])
    assert.are.same({ n = 2, nil, "closed" }, r[5])
    s:close()
    H.nothing_left()
  end)

  it("select and write/flush on sockets with no buffer yet", function()
    local c, s = H.tcp_pair()
    local r, w = csock.select({ s }, { c }, 0)
    assert.are.same({}, r)
    assert.are.same({ c }, w)
    assert.are.equal(c, c:flush())
    assert.are.equal(c, c:write())
    c:close(); s:close()
  end)
end)

-- 2a2be84 then 4a54536: with SO_LINGER on, close(2) blocks until the data
-- is sent or the linger time passes; csock's close must never block (it
-- switches lingering off, and the kernel still sends the data).
describe("close with SO_LINGER set returns at once", function()
  -- fills c's send path (the peer does not read): returns the bytes accepted
  local function fill(c)
    c:settimeout(0)
    local chunk, total = string.rep("L", 65536), 0
    while true do
      local n = c:send(chunk)
      if not n then break end
      total = total + n
    end
    return total
  end

  it("close(), <close> and __gc of a lingering socket with unsent data take no time; the peer still gets every byte", function()
    for _, how in ipairs({ "close", "<close>", "__gc" }) do
      local c, s = H.tcp_pair()
      assert.are.equal(true, c:setoption("linger", 5))
      assert.are.equal(5, c:getoption("linger"))
      local total = fill(c)
      assert.is_true(total > 0)
      local elapsed = H.timed(function()
        if how == "close" then
          c:close()
        elseif how == "<close>" then
          local x <close> = c
        else
          c = nil
          collectgarbage(); collectgarbage()
        end
      end)
      -- lingering would take the 5 s; two full collections of busted's heap
      -- take 0.2 s under valgrind
      assert.is_true(elapsed < 1, how .. " took " .. elapsed .. " s")
      s:settimeout(5)
      local got = s:read("a")
      assert.are.equal(total, #got, how)
      s:close()
      if c then c:close() end
    end
  end)

  it("an accepted socket inherits the listener's linger and closes at once too", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0))
    assert(l:setoption("linger", 5))
    assert(l:listen())
    local _, port = l:getsockname()
    local c = csock.socket()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    local s = assert(l:accept())
    assert.are.equal(5, s:getoption("linger"))
    local total = fill(s)
    local elapsed = H.timed(s.close, s)
    assert.is_true(elapsed < 0.2, "close took " .. elapsed .. " s")
    c:settimeout(5)
    assert.are.equal(total, #c:read("a"))
    c:close(); l:close()
  end)

  it("in a task, with coalesced output pending: close returns at once, the peer gets it all", function()
    local c, s = H.tcp_pair()
    assert(c:setoption("linger", 5))
    local total, elapsed
    csock.run(function()
      total = fill(c)
      c:settimeout(nil)
      c:write(string.rep("P", 1000)) -- coalesced: still in the socket
      total = total + 1000
      elapsed = H.timed(c.close, c)
      s:settimeout(5)
      local got = s:read("a")
      total = total - #got
    end)
    assert.is_true(elapsed < 0.2, "close took " .. elapsed .. " s")
    assert.are.equal(0, total, "bytes lost")
    s:close()
    H.nothing_left()
  end)
end)

-- 2a2be84: a unix listener with a full backlog answers connect with EAGAIN
-- and nothing signals when it has room, so connect returned at once instead
-- of waiting like a blocking connect.
describe("unix connect to a full backlog waits until its timeout", function()
  local function full_listener()
    local path = H.tmpname()
    local l = csock.socket("unix")
    assert(l:bind(path)); assert(l:listen(0))
    local fillers = {}
    for i = 1, 10 do
      local f = csock.socket("unix")
      f:settimeout(0)
      fillers[i] = f
      if not f:connect(path) then break end
    end
    return l, path, fillers
  end

  it("blocking: nil, 'timeout', ETIMEDOUT after the timeout", function()
    local l, path, fillers = full_listener()
    finally(function() os.remove(path) end)
    local c = csock.socket("unix")
    c:settimeout(0.3)
    local elapsed, r = H.timed(c.connect, c, path)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.29 and elapsed < 2, "elapsed " .. elapsed)
    c:close(); l:close()
    for _, f in ipairs(fillers) do f:close() end
  end)

  it("in a task: other tasks run meanwhile, and it times out the same way", function()
    local l, path, fillers = full_listener()
    finally(function() os.remove(path) end)
    local r, elapsed, ticks = nil, nil, 0
    csock.run(function()
      local ticking = true
      local ticker = csock.spawn(function()
        while ticking do csock.sleep(0.01) ticks = ticks + 1 end
      end)
      local c = csock.socket("unix")
      c:settimeout(0.3)
      elapsed, r = H.timed(c.connect, c, path)
      ticking = false
      ticker:join()
      c:close()
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.29 and elapsed < 2, "elapsed " .. elapsed)
    assert.is_true(ticks >= 10, "ticks " .. ticks)
    l:close()
    for _, f in ipairs(fillers) do f:close() end
    H.nothing_left()
  end)

  it("in a task: it connects as soon as the listener makes room", function()
    local l, path, fillers = full_listener()
    finally(function() os.remove(path) end)
    local r, elapsed
    csock.run(function()
      csock.spawn(function()
        csock.sleep(0.2)
        l:settimeout(1)
        for _ = 1, #fillers do
          local a = l:accept()
          if a then a:close() end
        end
      end)
      local c = csock.socket("unix")
      c:settimeout(3)
      elapsed, r = H.timed(c.connect, c, path)
      c:close()
    end)
    assert.are.same({ n = 1, true }, r)
    assert.is_true(elapsed >= 0.15 and elapsed < 1.5, "elapsed " .. elapsed)
    l:close()
    for _, f in ipairs(fillers) do f:close() end
    H.nothing_left()
  end)
end)

-- 59e63d8: after a short read csock skips the recv that would say EAGAIN
-- and waits first; with settimeout(0) that wait gave up without looking,
-- so data already in the kernel was reported as a timeout.
describe("settimeout(0) returns data that is already there (drained-socket shortcut)", function()
  it("blocking: recv and read after a short read", function()
    local c, s = H.tcp_pair()
    c:send("first")
    H.sleep(0.05)
    assert.are.equal("first", s:recv())        -- short read: the socket counts as drained
    c:send("second\n")
    H.sleep(0.05)
    s:settimeout(0)
    assert.are.equal("second\n", s:recv())
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, table.pack(s:recv()))
    c:send("third\n")
    H.sleep(0.05)
    assert.are.equal("third", s:read("l"))
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, table.pack(s:read("l")))
    c:close(); s:close()
  end)

  it("in a task: recv and read after a short read", function()
    local c, s = H.tcp_pair()
    local r = {}
    csock.run(function()
      c:send("first")
      csock.sleep(0.05)
      r[1] = s:recv()
      c:send("second\n")
      csock.sleep(0.05)
      s:settimeout(0)
      r[2] = s:recv()
      r[3] = table.pack(s:recv())
      c:send("third\n")
      csock.sleep(0.05)
      r[4] = s:read("l")
      r[5] = table.pack(s:read("l"))
    end)
    assert.are.equal("first", r[1])
    assert.are.equal("second\n", r[2])
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r[3])
    assert.are.equal("third", r[4])
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r[5])
    c:close(); s:close()
    H.nothing_left()
  end)
end)

-- 2a2be84 / 37617942: lines() raised on a timeout like file:lines raises on
-- errors, so a server's `for line in conn:lines()` turned every idle client
-- into an error report.
describe("lines() ends quietly on timeout inside a server", function()
  local function serve(client_code)
    local reports, got, ended, after = {}, {}, nil, nil
    csock.onerror(function(err) reports[#reports + 1] = err end)
    local peer
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        local t0 = csock.now()
        for line in conn:lines() do got[#got + 1] = line end
        ended = csock.now() - t0
      end, { timeout = 0.3 }))
      local _, port = server:getsockname()
      peer = H.spawn_peer(client_code, port)
      while ended == nil do csock.sleep(0.02) end
      csock.sleep(0.02)
      after = server.connections
      server:close()
    end)
    local out, code = peer:finish()
    H.nothing_left()
    return { reports = reports, got = got, ended = ended, after = after, out = out, code = code }
  end

  it("an idle client: the loop ends after the timeout, no error reported, connection closed", function()
    local r = serve([[
      local csock = require "csock"
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 5 }))
      c:write("a\nb\n")
      print(c:recv())
    ]])
    assert.are.same({}, r.reports)
    assert.are.same({ "a", "b" }, r.got)
    assert.is_true(r.ended >= 0.29 and r.ended < 1.5, "ended after " .. r.ended)
    assert.are.equal(0, r.after)
    assert.are.same({ "nil\tclosed\n", 0 }, { r.out, r.code })
  end)

  it("a client that resets: the loop ends at once, no error reported", function()
    local r = serve([[
      local csock = require "csock"
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 5 }))
      c:write("a\n")
      csock.sleep(0.1)
      c:setoption("linger", 0)
      c:close()
      print("reset")
    ]])
    assert.are.same({}, r.reports)
    assert.are.same({ "a" }, r.got)
    assert.is_true(r.ended < 0.29, "ended after " .. r.ended)
    assert.are.equal(0, r.after)
    assert.are.same({ "reset\n", 0 }, { r.out, r.code })
  end)
end)
