-- Faults: a peer that resets the connection (mid-read, mid-write), the end
-- of stream or a reset arriving with the last bytes, half-close, and a peer
-- killed with SIGKILL mid-transfer.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local E = csock.errno
local MiB = 1048576
local show = H.show_results

local function is_reset_or_closed(r)
  return r[1] == nil and (r[2] == "closed" or r[2] == "connection reset by peer")
end

describe("a peer that resets the connection (linger 0, then close)", function()
  it("mid-read, blocking: recv gets nil, 'connection reset by peer', ECONNRESET; later reads nil, 'closed'", function()
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 5 }))
      assert(c:send("abc"))
      csock.sleep(0.3)
      assert(c:setoption("linger", 0))
      c:close()
      print("reset")
    ]], port)
    local s = assert(l:accept())
    s:settimeout(5)
    assert.are.equal("abc", s:recv())
    local elapsed, r = H.timed(s.recv, s) -- waits until the reset arrives
    assert.are.same({ n = 3, nil, "connection reset by peer", E.ECONNRESET }, r)
    assert.is_true(elapsed > 0.1 and elapsed < 3, "elapsed " .. elapsed)
    for _ = 1, 3 do
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:recv()))
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read("l")))
    end
    for _ = 1, 3 do
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:send("x")))
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:write("x")))
    end
    s:close(); l:close()
    assert.are.same({ "reset\n", 0 }, { peer:finish() })
  end)

  it("mid-read, in a task: the waiting recv and read get nil and a reset/closed message", function()
    local c, s = H.tcp_pair()
    local r1, r2, later
    csock.run(function()
      local t1 = csock.spawn(function() return table.pack(s:recv()) end)
      local t2 = csock.spawn(function() return table.pack(s:read("l")) end)
      csock.sleep(0.1)
      assert(c:setoption("linger", 0))
      c:close()
      r1, r2 = t1:join(), t2:join()
      later = { table.pack(s:recv()), table.pack(s:read(4)), table.pack(s:send("x")) }
    end)
    -- one of the two waiters takes the reset, the other the end of stream
    assert.are.same({ n = 3, nil, "connection reset by peer", E.ECONNRESET }, r1)
    assert.are.same({ n = 2, nil, "closed" }, r2)
    assert.are.same({ n = 2, nil, "closed" }, later[1])
    assert.are.same({ n = 2, nil, "closed" }, later[2])
    assert.are.same({ n = 3, nil, "closed", E.EPIPE }, later[3])
    s:close()
    H.nothing_left()
  end)

  it("mid-write, blocking: write of 64 MiB gets nil and a reset/closed message; later writes nil, 'closed'", function()
    local big = H.filled(64 * MiB, "w") -- made first: it takes a while
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 5 }))
      assert(c:read(65536))
      csock.sleep(0.3)
      assert(c:setoption("linger", 0))
      c:close()
      print("reset")
    ]], port)
    local s = assert(l:accept())
    s:settimeout(5)
    local elapsed, r = H.timed(s.write, s, big)
    assert.is_true(is_reset_or_closed(r), show(r))
    assert.is_true(r[3] == E.ECONNRESET or r[3] == E.EPIPE, show(r))
    assert.is_true(elapsed > 0.1 and elapsed < 3, "elapsed " .. elapsed)
    for _ = 1, 3 do
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:write("x")))
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:send("x")))
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:flush())) -- the failure sticks
    end
    s:close(); l:close()
    assert.are.same({ "reset\n", 0 }, { peer:finish() })
  end)

  it("mid-write, in a task: the waiting write gets nil and a reset/closed message", function()
    local c, s = H.tcp_pair()
    local r
    csock.run(function()
      local w = csock.spawn(function() return table.pack(s:write(H.filled(64 * MiB, "w"))) end)
      csock.sleep(0.1)
      assert(c:setoption("linger", 0))
      c:close()
      r = w:join()
    end)
    assert.is_true(is_reset_or_closed(r), show(r))
    assert.is_true(r[3] == E.ECONNRESET or r[3] == E.EPIPE, show(r))
    assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:send("x")))
    s:close()
    H.nothing_left()
  end)

  it("in a task, once a write failed every later write and flush fails too (no write 'succeeds' into a dead socket)", function()
    local c, s = H.tcp_pair()
    local results = {}
    csock.run(function()
      assert(c:setoption("linger", 0))
      c:close()
      csock.sleep(0.05)
      results[#results + 1] = table.pack(s:recv())      -- the reset
      results[#results + 1] = table.pack(s:write(string.rep("x", 100000))) -- a direct send: fails
      for _ = 1, 4 do
        results[#results + 1] = table.pack(s:write("x")) -- small: would be coalesced
        csock.sleep(0)                                   -- a turn of the loop (its flush)
      end
      results[#results + 1] = table.pack(s:flush())
    end)
    s:close()
    H.nothing_left()
    assert.are.same({ n = 3, nil, "connection reset by peer", E.ECONNRESET }, results[1])
    for i = 2, #results do
      assert.are.same({ n = 3, nil, "closed", E.EPIPE }, results[i], "call " .. i .. " " .. show(results[i]))
    end
  end)
end)

describe("the end of stream (or a reset) that arrives together with the last bytes", function()
  -- The reader waits first (so the socket is watched), then the peer sends
  -- and closes in one turn: data and FIN (or RST) are one readiness report.
  local function race(how, read)
    local c, s = H.tcp_pair()
    s:settimeout(2)
    local first, second
    csock.run(function()
      local reader = csock.spawn(function()
        return table.pack(read(s)), table.pack(read(s))
      end)
      csock.spawn(function()
        c:send("abc\n")
        if how == "reset" then assert(c:setoption("linger", 0)) c:close()
        elseif how == "shutdown" then c:shutdown("w")
        else c:close() end
      end)
      first, second = reader:join()
    end)
    c:close(); s:close()
    H.nothing_left()
    return first, second
  end

  it("close: recv in a task gets the bytes, then nil, 'closed' (not a timeout)", function()
    local a, b = race("close", function(s) return s:recv() end)
    assert.are.same({ n = 1, "abc\n" }, a)
    assert.are.same({ n = 2, nil, "closed" }, b)
  end)

  it("close: read('l') in a task gets the line, then nil, 'closed' (not a timeout)", function()
    local a, b = race("close", function(s) return s:read("l") end)
    assert.are.same({ n = 1, "abc" }, a)
    assert.are.same({ n = 2, nil, "closed" }, b)
  end)

  it("shutdown('w'): recv in a task gets the bytes, then nil, 'closed'", function()
    local a, b = race("shutdown", function(s) return s:recv() end)
    assert.are.same({ n = 1, "abc\n" }, a)
    assert.are.same({ n = 2, nil, "closed" }, b)
  end)

  it("reset: recv in a task gets the bytes, then nil, 'connection reset by peer'", function()
    local a, b = race("reset", function(s) return s:recv() end)
    assert.are.same({ n = 1, "abc\n" }, a)
    assert.are.same({ n = 3, nil, "connection reset by peer", E.ECONNRESET }, b)
  end)
end)

describe("half-close", function()
  local function half_close(pair, first)
    local c, s = pair()
    local a, b = c, s
    if first == "server" then a, b = s, c end
    assert.are.equal(4, a:send("ping"))
    assert.are.equal(true, a:shutdown("w"))
    assert.are.equal("ping", b:recv())
    assert.are.same({ n = 2, nil, "closed" }, table.pack(b:recv()))
    assert.are.same({ n = 2, nil, "closed" }, table.pack(b:read("l")))
    assert.are.equal("", b:read("a"))
    -- the other direction still works, both ways of writing
    assert.are.equal(4, b:send("pong"))
    assert.are.equal(b, b:write(" and more\n"))
    assert.are.equal("pong and more", a:read("l"))
    assert.are.equal(true, b:shutdown("w"))
    assert.are.same({ n = 2, nil, "closed" }, table.pack(a:recv()))
    c:close(); s:close()
  end

  it("tcp, client shuts down 'w': the server reads nil, 'closed' and can still send", function()
    half_close(H.tcp_pair, "client")
  end)

  it("tcp, server shuts down 'w': the client reads nil, 'closed' and can still send", function()
    half_close(H.tcp_pair, "server")
  end)

  it("unix, either side first", function()
    half_close(H.unix_pair, "client")
    half_close(H.unix_pair, "server")
  end)

  it("in tasks: coalesced output goes out before the FIN; the reverse direction keeps working", function()
    local c, s = H.tcp_pair()
    local got
    csock.run(function()
      c:write("one ", "two ")   -- coalesced in the socket
      c:write("three\n")
      assert.are.equal(true, c:shutdown("w"))
      csock.sleep(0.1)          -- the FIN is in; the server reads afterwards
      got = { s:read("l"), table.pack(s:read("l")) }
      s:write("back\n")
      got[3] = c:read("l")
    end)
    assert.are.equal("one two three", got[1])
    assert.are.same({ n = 2, nil, "closed" }, got[2])
    assert.are.equal("back", got[3])
    c:close(); s:close()
    H.nothing_left()
  end)
end)

describe("a peer killed with SIGKILL mid-transfer", function()
  it("the reader gets every byte sent so far, then nil and a reset/closed message", function()
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local f = io.open("/proc/self/stat"); local pid = f:read("n"); f:close()
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 15 }))
      print(math.tointeger(pid))
      local block = H.pattern(65536, 9)
      while c:write(block) do end
    ]], port)
    local pid = tonumber(peer:line())
    local s = assert(l:accept())
    s:settimeout(5)
    local parts, n = {}, 0
    while n < 4 * MiB do
      local d = assert(s:recv())
      parts[#parts + 1] = d
      n = n + #d
    end
    os.execute("kill -9 " .. pid)
    local last
    while true do
      local r = table.pack(s:recv())
      if r[1] == nil then last = r break end
      parts[#parts + 1] = r[1]
      n = n + #r[1]
    end
    assert.is_true(is_reset_or_closed(last), show(last))
    local got = table.concat(parts)
    local block = H.pattern(65536, 9)
    local want = string.rep(block, n // 65536 + 1):sub(1, n)
    assert.is_nil(H.first_diff(got, want))
    s:close(); l:close()
    local _, code = peer:finish()
    assert.are.equal(137, code) -- timeout(1) passes the SIGKILL on as 128 + 9
  end)

  it("the writer gets nil and a reset/closed message, and keeps getting it", function()
    local big = H.filled(64 * MiB, "w") -- made first: it takes a while
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local f = io.open("/proc/self/stat"); local pid = f:read("n"); f:close()
      local c = assert(csock.connect("127.0.0.1", tonumber(arg[1]), { timeout = 15 }))
      assert(c:read(65536))
      print(math.tointeger(pid))
      csock.sleep(15)
    ]], port)
    local s = assert(l:accept())
    s:settimeout(5)
    assert.are.equal(65536, s:send(string.rep("k", 65536)))
    local pid = tonumber(peer:line())
    local killer = os.execute("(sleep 0.3; kill -9 " .. pid .. ") &")
    assert.is_truthy(killer)
    local elapsed, r = H.timed(s.write, s, big)
    assert.is_true(is_reset_or_closed(r), show(r))
    assert.is_true(elapsed > 0.1 and elapsed < 4, "elapsed " .. elapsed)
    assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:write("x")))
    s:close(); l:close()
    local _, code = peer:finish()
    assert.are.equal(137, code)
  end)
end)
