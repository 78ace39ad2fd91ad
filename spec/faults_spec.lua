-- Faults: what the peer, the OS and the environment can do to a connection,
-- and what csock answers. Resets mid-read and mid-write, half-close, a peer
-- that never reads, slowloris, accept at EMFILE, EINTR on every blocking
-- call, closing a socket under waiting tasks, a task raising while it holds
-- a socket, DNS failure and unreachable addresses under one deadline,
-- 100,000 connect/close cycles, a peer killed with SIGKILL.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local E = csock.errno
local MiB = 1048576

local CLK_TCK = tonumber((function()
  local p = io.popen("getconf CLK_TCK")
  local v = p:read("l")
  p:close()
  return v
end)()) or 100

-- utime + stime of a process, in seconds.
local function cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("a")
  f:close()
  local fields = {}
  for w in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is field 3 (state): utime is field 14, stime field 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

local function is_reset_or_closed(r)
  return r[1] == nil and (r[2] == "closed" or r[2] == "connection reset by peer")
end

local function show(r)
  local t = {}
  for i = 1, r.n or #r do t[i] = tostring(r[i]) end
  return "(" .. table.concat(t, ", ") .. ")"
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

describe("a peer that never reads", function()
  local TOTAL = H.UNDER_VALGRIND and 64 * MiB or 256 * MiB

  it("blocking: write(" .. TOTAL // MiB .. " MiB) with settimeout(0.5) gives nil, 'timeout', ETIMEDOUT; RSS grows < 32 MiB", function()
    local c, s = H.tcp_pair()
    local big = H.filled(TOTAL, "b")
    collectgarbage()
    local before = H.rss_kib()
    c:settimeout(0.5)
    local elapsed, r = H.timed(c.write, c, big)
    local grown = H.rss_kib() - before
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.49 and elapsed < 3, "elapsed " .. elapsed)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    s:close(); c:close()
  end)

  it("in a task: " .. TOTAL // MiB .. " MiB in 64 KiB writes stops at nil, 'timeout'; RSS grows < 32 MiB", function()
    local c, s = H.tcp_pair()
    local chunk = string.rep("c", 65536)
    collectgarbage()
    local before = H.rss_kib()
    local r, accepted, elapsed, grown
    csock.run(function()
      c:settimeout(0.5)
      local t0 = csock.now()
      accepted = 0
      for _ = 1, TOTAL // #chunk do
        r = table.pack(c:write(chunk))
        if r[1] == nil then break end
        accepted = accepted + #chunk
      end
      elapsed = csock.now() - t0
      grown = H.rss_kib() - before
      s:close() -- lets the rest of c's output fail at once
      c:close()
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(accepted < 64 * MiB, "accepted " .. accepted .. " bytes")
    assert.is_true(elapsed >= 0.49 and elapsed < 5, "elapsed " .. elapsed)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    H.nothing_left()
  end)

  it("in a task: one write(" .. TOTAL // MiB .. " MiB) gives nil, 'timeout'; RSS grows < 32 MiB (no copy of the string)", function()
    local c, s = H.tcp_pair()
    local big = H.filled(TOTAL, "d")
    collectgarbage()
    local before = H.rss_kib()
    local r, grown
    csock.run(function()
      c:settimeout(0.5)
      r = table.pack(c:write(big))
      grown = H.rss_kib() - before
      s:close()
      c:close()
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    H.nothing_left()
  end)
end)

describe("slowloris against csock.listen{timeout = 1}", function()
  -- A child that connects and sends one byte per `every` seconds, `count`
  -- times, then stays silent; it reports when its connection was closed.
  local DRIBBLER = [[
    local csock = require "csock"
    local port, every, count = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
    local c = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
    local t0 = csock.now()
    for i = 1, count do
      csock.sleep(every)
      if not c:send("a") then break end
    end
    c:settimeout(8)
    local d, err = c:recv()
    print(string.format("%s %.1f", tostring(d or err), csock.now() - t0))
  ]]

  -- runs a server whose handler is `handler(conn)` (returning a table of
  -- facts) against one dribbler; returns the facts, the handler's time and
  -- the dribbler's report
  local function serve(handler, every, count)
    local facts, elapsed, peer
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        local t0 = csock.now()
        facts = handler(conn)
        elapsed = csock.now() - t0
      end, { timeout = 1 }))
      local _, port = server:getsockname()
      peer = H.spawn_peer(DRIBBLER, port, every, count)
      while elapsed == nil do csock.sleep(0.05) end
      server:close()
    end)
    local out, code = peer:finish()
    H.nothing_left()
    return facts, elapsed, out, code
  end

  it("a line trickled one byte per 0.3 s: read('l') gives up after ~1 s (the timeout covers the whole call), bytes kept", function()
    local facts, elapsed, out, code = serve(function(conn)
      local r = table.pack(conn:read("l"))
      conn:settimeout(0)
      return { read = r, kept = conn:recv() }
    end, 0.3, 20)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, facts.read)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the read lasted " .. elapsed)
    -- what trickled in before the timeout is still there (3 bytes by 1 s)
    assert.is_truthy(facts.kept and facts.kept:match("^a+$"), tostring(facts.kept))
    assert.is_true(#facts.kept >= 2 and #facts.kept <= 4, "kept " .. #facts.kept)
    -- the server closed the connection: the dribbler's recv saw it
    assert.are.equal(0, code)
    assert.is_truthy(out:match("^closed %d") or out:match("^connection reset by peer %d"), out)
  end)

  it("lines() in the handler: the trickle ends the loop quietly after ~1 s and the connection is closed", function()
    local facts, elapsed, out, code = serve(function(conn)
      local n = 0
      for _ in conn:lines() do n = n + 1 end
      return { lines = n }
    end, 0.3, 20)
    assert.are.same({ lines = 0 }, facts)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the handler lasted " .. elapsed)
    assert.are.equal(0, code)
    local t = tonumber(out:match("^%S+ ([%d.]+)"))
    assert.is_truthy(t, out)
    assert.is_true(t < 3, "the dribbler saw the close after " .. t .. " s")
  end)

  it("chunks() in the handler: each recv waits up to 1 s, so the trickle keeps it; closed 1 s after it stops", function()
    local facts, elapsed, out, code = serve(function(conn)
      local n = 0
      for d in conn:chunks() do n = n + #d end
      return { bytes = n }
    end, 0.3, 6) -- 6 bytes over 1.8 s, then silence
    assert.are.same({ bytes = 6 }, facts)
    assert.is_true(elapsed >= 2.6 and elapsed < 3.8, "the handler lasted " .. elapsed)
    assert.are.equal(0, code)
    assert.is_truthy(out:match("^closed %d") or out:match("^connection reset by peer %d"), out)
  end)

  it("a client that connects and sends nothing is closed after ~1 s", function()
    local facts, elapsed, out, code = serve(function(conn)
      return { read = table.pack(conn:read("l")) }
    end, 0, 0)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, facts.read)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the read lasted " .. elapsed)
    assert.are.equal(0, code)
    local t = tonumber(out:match("^closed ([%d.]+)"))
    assert.is_truthy(t, out)
    assert.is_true(t >= 0.9 and t < 2.5, "closed after " .. t)
  end)
end)

describe("accept at EMFILE", function()
  it("a server with ulimit -n 64 stays cheap while saturated, keeps its listener and serves again", function()
    local peer = H.spawn_peer_with("ulimit -n 64;", [[
      local csock = require "csock"
      local f = io.open("/proc/self/stat"); local pid = f:read("n"); f:close()
      local server
      server = assert(csock.listen("127.0.0.1", 0, function(conn)
        for line in conn:lines() do
          if line == "quit" then server:close() return end
          conn:write(line, "\n")
        end
      end))
      print("ready " .. math.tointeger(pid) .. " " .. select(2, server:getsockname()))
      csock.run()
      print("exit")
    ]])
    local pid, port = (peer:line() or ""):match("^ready (%d+) (%d+)$")
    assert.is_truthy(pid, "the server did not start")
    port = tonumber(port)
    local conns = {}
    for i = 1, 100 do
      local c = csock.socket()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      assert.are.equal(3, c:send("hi\n"))
      conns[i] = c
    end
    H.sleep(1)
    -- the connections it could accept have their answer; the rest wait in the backlog
    local served, waiting = {}, {}
    local readable = csock.select(conns, {}, 0)
    local is_served = {}
    for _, c in ipairs(readable) do is_served[c] = true end
    for _, c in ipairs(conns) do
      if is_served[c] then served[#served + 1] = c else waiting[#waiting + 1] = c end
    end
    assert.is_true(#served >= 20 and #waiting >= 10,
      ("served %d, waiting %d: the server never ran out of descriptors?"):format(#served, #waiting))
    for _, c in ipairs(served) do assert.are.equal("hi", c:read("l")) end
    -- saturated: accept fails with EMFILE, and must not spin
    local cpu0 = cpu_seconds(pid)
    H.sleep(2)
    local used = cpu_seconds(pid) - cpu0
    assert.is_true(used < 0.5, ("the saturated server used %.2f s of CPU in 2 s"):format(used))
    -- free its descriptors: the connections that waited are served in turn
    for _, c in ipairs(served) do c:close() end
    for i, c in ipairs(waiting) do
      assert.are.same({ n = 1, "hi" }, table.pack(c:read("l")), "waiting connection " .. i)
    end
    -- and the listener is still open: a new connection is served
    local new = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
    new:write("new\n")
    assert.are.equal("new", new:read("l"))
    new:write("quit\n")
    new:close()
    for _, c in ipairs(waiting) do c:close() end
    assert.are.same({ "exit\n", 0 }, { peer:finish() })
  end)
end)

describe("EINTR", function()
  -- Side A runs with spec/tools/eintr.c preloaded: SIGALRM every 1 ms, no
  -- SA_RESTART, so every blocking syscall is interrupted again and again.
  -- Side B (a plain child) makes A's data arrive late, so that A really
  -- blocks in each call.
  -- A does not load spec/helper.lua: its io.popen("pwd") is Lua's own io,
  -- which does not retry on EINTR. These are H.pattern and H.bulk.
  local SIDE_A = [[
    local csock = require "csock"
    local H = {}
    function H.pattern(n, seed)
      local t, x, chunk = {}, seed or 1, {}
      for i = 1, n do
        x = (x * 1103515245 + 12345) % 2147483648
        chunk[#chunk + 1] = (x >> 16) & 255
        if #chunk == 4096 or i == n then
          t[#t + 1] = string.char(table.unpack(chunk))
          chunk = {}
        end
      end
      return table.concat(t)
    end
    function H.bulk(size)
      local base, blocks = H.pattern(65536, 7), {}
      for i = 0, size // 65536 - 1 do
        local r = i % 4096 + 9
        blocks[#blocks + 1] = string.format("%08x", i) .. (base:sub(r) .. base:sub(9, r - 1))
      end
      return table.concat(blocks)
    end
    local l = csock.socket()
    l:settimeout(10)
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    print("port " .. select(2, l:getsockname()))
    local function check(name, ok, ...)
      if ok then print("ok " .. name)
      else print("FAIL " .. name, ...) end
    end
    local BULK, PAT = H.bulk(8 * 1048576), H.pattern(200000, 3)
    local function round(mode)
      local c = l:accept()
      check(mode .. " accept", c ~= nil)
      c:settimeout(10)
      -- waitfd first: once csock itself waits on c, the loop watches its fd
      local ok, e2 = csock.waitfd(c:fileno(), "r", 10)
      check(mode .. " waitfd", ok == true, ok, e2)
      local d, err = c:recv(10)
      check(mode .. " recv", d == "hello", d, err)
      d, err = c:read("l")
      check(mode .. " read line", d == "world", d, err)
      d, err = c:read(200000)
      check(mode .. " read count", d == PAT, d and #d, err)
      local r, _, e = csock.select({ c }, {}, 10)
      check(mode .. " select", r[1] == c, #r, e)
      check(mode .. " recv after select", c:recv() == "x")
      local t0 = csock.now()
      csock.sleep(0.3)
      local dt = csock.now() - t0
      check(mode .. " sleep", dt >= 0.3 and dt < 1, dt)
      check(mode .. " write", c:write(BULK) == c and c:flush() == c)
      d, err = c:read("l")
      check(mode .. " peer got the write", d == "got 8388608 same", d, err)
      local bport = tonumber((c:read("l")))
      local k = csock.socket()
      k:settimeout(10)
      local okc, errc = k:connect("127.0.0.1", bport) -- B's backlog is full: a SYN retry
      check(mode .. " connect", okc == true, errc)
      k:write("k\n")
      d, err = k:read("l")
      check(mode .. " connected peer answers", d == "K", d, err)
      k:close()
      local a, erra = csock.getaddrinfo("localhost", 80)
      check(mode .. " getaddrinfo", a and a[1].host == "127.0.0.1", erra)
      d, err = c:read("a")
      check(mode .. " read all", d == "bye", d, err)
      c:close()
    end
    round("blocking")
    csock.run(function()
      local ticks = 0
      local ticker = csock.timer(0.01, function() ticks = ticks + 1 end, 0.01)
      round("task")
      ticker:cancel()
      check("task timers ran meanwhile", ticks > 20, ticks)
    end)
    l:close()
    print("done")
  ]]

  local SIDE_B = [[
    local csock = require "csock"
    local H = require "helper"
    local port = tonumber(arg[1])
    local BULK, PAT = H.bulk(8 * 1048576), H.pattern(200000, 3)
    local P = 0.15
    for _ = 1, 2 do
      csock.sleep(P)
      local c = assert(csock.connect("127.0.0.1", port, { timeout = 10 }))
      csock.sleep(P); assert(c:send("hello"))
      csock.sleep(P); assert(c:send("wor"))
      csock.sleep(P); assert(c:send("ld\n"))
      for i = 0, 3 do
        csock.sleep(0.1)
        assert(c:write(PAT:sub(i * 50000 + 1, (i + 1) * 50000)))
      end
      csock.sleep(P); assert(c:send("x"))
      csock.sleep(0.5) -- A writes 8 MiB after 0.3 s: it blocks until B reads
      local got = c:read(8 * 1048576)
      c:write("got ", got and #got or 0, " ", got == BULK and "same" or "different", "\n")
      -- a listener with a full backlog: A's connect waits for its SYN retry
      local l = csock.socket()
      assert(l:bind("127.0.0.1", 0)); assert(l:listen(0))
      local _, lport = l:getsockname()
      local fillers = {}
      for _ = 1, 10 do
        local f = csock.socket()
        f:settimeout(0.2)
        if f:connect("127.0.0.1", lport) then fillers[#fillers + 1] = f
        else f:close() break end
      end
      c:write(lport, "\n")
      csock.sleep(0.3)
      l:settimeout(5)
      for _ = 1, #fillers do assert(l:accept()):close() end
      local k = assert(l:accept())
      k:settimeout(5)
      k:write(k:read("l") == "k" and "K\n" or "?\n")
      k:close(); l:close()
      for _, f in ipairs(fillers) do f:close() end
      csock.sleep(P); c:write("bye")
      csock.sleep(P); c:close()
    end
    print("B done")
  ]]

  it("every blocking call (accept, recv, read, select, waitfd, sleep, write, connect, getaddrinfo), blocking and in tasks, gives its normal result", function()
    local so = H.build_shim("eintr")
    finally(function() os.remove(so) end)
    local a = H.spawn_peer_with(H.preload(so), SIDE_A)
    local first = a:line()
    local port = (first or ""):match("^port (%d+)$")
    assert.is_truthy(port, "side A did not start: " .. tostring(first))
    local b = H.spawn_peer(SIDE_B, port)
    local out_a, code_a = a:finish()
    local out_b, code_b = b:finish()
    assert.are.same({ "B done\n", 0 }, { out_b, code_b })
    local expected = {}
    for _, mode in ipairs({ "blocking", "task" }) do
      for _, what in ipairs({ "accept", "waitfd", "recv", "read line", "read count", "select", "recv after select",
                              "sleep", "write", "peer got the write",
                              "connect", "connected peer answers", "getaddrinfo", "read all" }) do
        expected[#expected + 1] = "ok " .. mode .. " " .. what
      end
    end
    expected[#expected + 1] = "ok task timers ran meanwhile"
    expected[#expected + 1] = "done"
    local signals, waits = out_a:match("eintr: (%d+) signals, (%d+) interrupted waits\n")
    assert.are.equal(table.concat(expected, "\n") .. "\n",
      (out_a:gsub("eintr: %d+ signals, %d+ interrupted waits\n", "")))
    assert.are.equal(0, code_a)
    -- the signals did arrive, and did interrupt csock's waits
    assert.is_true(tonumber(signals) > 1000, "signals: " .. tostring(signals))
    assert.is_true(tonumber(waits) > 100, "interrupted waits: " .. tostring(waits))
  end)
end)

describe("signals and descriptors", function()
  it("loading csock, running tasks and a lookup on a helper thread change no signal's disposition or mask; the helper thread blocks them all", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with("CSOCK_SLOWDNS_SECONDS=1 " .. H.preload(so), [[
      local pid = io.open("/proc/self/stat"):read("n")
      local function sigs(path)
        local t = {}
        for line in io.lines(path) do
          local k, v = line:match("^(Sig%a%a%a):%s+(%x+)")
          -- signals 1..31 (glibc itself takes 32 and 33 for its threads)
          if k then t[#t + 1] = ("%s=%08x"):format(k, tonumber(v, 16) & 0x7fffffff) end
        end
        return table.concat(t, " ")
      end
      local before = sigs("/proc/self/status")
      local csock = require "csock"
      local after_require = sigs("/proc/self/status")
      local helper
      csock.run(function()
        local lookup = csock.spawn(function() return csock.getaddrinfo("x.slow.invalid", 80) end)
        local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
        local c = csock.connect("127.0.0.1", select(2, l:getsockname()), { timeout = 1 })
        local a = l:accept()
        csock.spawn(function() csock.sleep(0.1) c:write("x") end)
        a:read(1)
        csock.sleep(0.2) -- the helper thread is in its 1-second lookup now
        local p = io.popen("ls /proc/" .. math.tointeger(pid) .. "/task")
        for tid in p:lines() do
          if tonumber(tid) ~= pid then
            for line in io.lines("/proc/" .. math.tointeger(pid) .. "/task/" .. tid .. "/status") do
              helper = helper or line:match("^SigBlk:%s+(%x+)")
            end
          end
        end
        p:close()
        lookup:join()
        c:close(); a:close(); l:close()
      end)
      local after_loop = sigs("/proc/self/status")
      print(before == after_require and "same after require" or ("changed: " .. before .. " / " .. after_require))
      print(before == after_loop and "same after the loop" or ("changed: " .. before .. " / " .. after_loop))
      print("helper " .. tostring(helper))
    ]]):finish()
    assert.are.equal(0, code)
    local helper = out:match("helper (%x+)\n$")
    assert.are.equal("same after require\nsame after the loop\nhelper " .. tostring(helper) .. "\n", out)
    assert.is_truthy(helper, "no helper thread was seen")
    local mask = tonumber(helper, 16)
    for _, sig in ipairs({ 1, 2, 3, 10, 12, 13, 14, 15, 17, 28 }) do -- HUP INT QUIT USR1 USR2 PIPE ALRM TERM CHLD WINCH
      assert.are_not.equal(0, mask & (1 << (sig - 1)), "signal " .. sig .. " is not blocked in the helper thread")
    end
  end)

  it("every descriptor csock makes is close-on-exec (waitfd's too): a program started meanwhile inherits none", function()
    local out, code = H.spawn_peer([[
      local csock = require "csock"
      local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
      local c = csock.socket(); c:settimeout(1); assert(c:connect("127.0.0.1", select(2, l:getsockname())))
      local a = assert(l:accept())
      local u = csock.socket("unix", "dgram")
      local path = os.tmpname() .. ".sock"
      local ul = csock.socket("unix"); assert(ul:bind(path)); assert(ul:listen())
      csock.signal("USR2", function() end) -- a signalfd
      local listing
      csock.run(function()
        local sel = csock.spawn(function() return csock.select({ a }, {}, 2) end) -- its own epoll set
        local rd = csock.spawn(function() return c:read(1) end)                 -- c in the loop's poller
        local gai = csock.spawn(function() return csock.getaddrinfo("localhost", 80) end) -- eventfd
        csock.sleep(0.02)
        -- waitfd on the fd of a socket the loop already watches (c): another
        -- descriptor for the same socket
        local wf = csock.spawn(function() return csock.waitfd(c:fileno(), "r", 2) end)
        csock.sleep(0.03)
        local p = io.popen("ls -l /proc/self/fd")
        listing = p:read("a")
        p:close()
        c:send("x"); a:send("y")
        sel:join(); rd:join(); gai:join(); wf:join()
      end)
      csock.signal("USR2", nil)
      os.remove(path)
      local inherited = {}
      for target in listing:gmatch("-> ([^\n]+)") do
        if target:find("socket:", 1, true) or target:find("anon_inode", 1, true) then
          inherited[#inherited + 1] = target
        end
      end
      print(#inherited == 0 and "none inherited" or table.concat(inherited, " "))
    ]]):finish()
    assert.are.same({ "none inherited\n", 0 }, { out, code })
  end)
end)

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

describe("csock.connect under one deadline {timeout = 0.5}", function()
  local function timed_connect(...)
    local elapsed, r = H.timed(csock.connect, ...)
    if r[1] then r[1]:close() end
    return elapsed, r
  end

  it("a name that does not resolve: nil and the resolver's message, at once (blocking and in a task)", function()
    local elapsed, r = timed_connect("no-such-host.invalid", 80, { timeout = 0.5 })
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    assert.is_true(elapsed < 0.7, "elapsed " .. elapsed)
    local tr, telapsed
    csock.run(function()
      telapsed, tr = timed_connect("no-such-host.invalid", 80, { timeout = 0.5 })
    end)
    assert.is_nil(tr[1])
    assert.is_true(tr[2] == r[2] or tr[2] == "timeout", tostring(tr[2]))
    assert.is_true(telapsed < 0.7, "elapsed " .. telapsed)
    H.nothing_left()
  end)

  it("a port nobody listens on: nil, 'connection refused', ECONNREFUSED at once", function()
    local port = H.free_port()
    local elapsed, r = timed_connect("127.0.0.1", port, { timeout = 0.5 })
    assert.are.same({ n = 3, nil, "connection refused", E.ECONNREFUSED }, r)
    assert.is_true(elapsed < 0.3, "elapsed " .. elapsed)
  end)

  it("a listener whose backlog is full (connects hang): nil, 'timeout', ETIMEDOUT after ~0.5 s, blocking and in a task", function()
    local l, port = H.listener { backlog = 0 }
    local fillers = {}
    for i = 1, 10 do -- fill the backlog: the first connect that hangs shows it is full
      local f = csock.socket()
      f:settimeout(0.2)
      fillers[i] = f
      if not f:connect("127.0.0.1", port) then break end
    end
    local elapsed, r = timed_connect("127.0.0.1", port, { timeout = 0.5 })
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.49 and elapsed < 1, "elapsed " .. elapsed)
    local tr, telapsed
    csock.run(function()
      telapsed, tr = timed_connect("localhost", port, { timeout = 0.5 }) -- resolution + connect
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, tr)
    assert.is_true(telapsed >= 0.49 and telapsed < 1, "elapsed " .. telapsed)
    for _, f in ipairs(fillers) do f:close() end
    l:close()
    H.nothing_left()
  end)

  -- A resolver that takes 3 s (spec/tools/slowdns.c, no packet sent): the
  -- deadline must cover the lookup too.
  local SLOW = [[
    local csock = require "csock"
    local function try(...)
      local t0 = csock.now()
      local r = table.pack(csock.connect(...))
      return string.format("%s %s %.1f", tostring(r[1]), tostring(r[2]), csock.now() - t0)
    end
    if arg[1] == "task" then
      csock.run(function() print(try("x.slow.invalid", 80, { timeout = 0.5 })) end)
    else
      print(try("x.slow.invalid", 80, { timeout = 0.5 }))
    end
    os.exit(0) -- without waiting for the resolver thread at exit
  ]]

  it("a resolver that never answers, in a task: nil, 'timeout' after ~0.5 s", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with(H.preload(so), SLOW, "task"):finish()
    assert.are.equal(0, code)
    assert.are.equal("nil timeout 0.5\n", out)
  end)

  it("a resolver that never answers, blocking: nil, 'timeout' after ~0.5 s", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with(H.preload(so), SLOW, "blocking"):finish()
    assert.are.equal(0, code)
    assert.are.equal("nil timeout 0.5\n", out)
  end)
end)

describe("connect/close cycles", function()
  local N = H.UNDER_VALGRIND and 2000 or H.UNDER_ASAN and 20000 or 100000

  it(N .. " cycles (half blocking, half in tasks through csock.listen): no descriptor or memory growth", function()
    local l, port = H.listener { backlog = 511 }
    collectgarbage(); collectgarbage()
    -- Lua 5.4.4 paces its collector badly after a huge string was freed (an
    -- earlier test's 64 MiB): it would let garbage grow by as much before
    -- the next cycle. One explicit step sets the pace right again.
    collectgarbage("step", 0)
    local fds0, lua0, rss0 = H.count_fds(), collectgarbage("count"), H.rss_kib()
    for i = 1, N // 2 do
      local c = csock.socket()
      c:settimeout(5)
      local ok, err = c:connect("127.0.0.1", port)
      if not ok then error("blocking cycle " .. i .. ": " .. tostring(err)) end
      local s = assert(l:accept())
      s:close()
      c:close()
    end
    l:close()
    local accepted = 0
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        accepted = accepted + 1
      end))
      local _, p = server:getsockname()
      for i = 1, N - N // 2 do
        local c, err = csock.connect("127.0.0.1", p, { timeout = 5 })
        if not c then error("task cycle " .. i .. ": " .. tostring(err)) end
        c:close()
      end
      while accepted < N - N // 2 do csock.sleep(0.01) end
      server:close()
    end)
    H.nothing_left()
    collectgarbage(); collectgarbage()
    local fds, lua, rss = H.count_fds() - fds0, collectgarbage("count") - lua0, H.rss_kib() - rss0
    assert.is_true(fds <= 0, fds .. " more sockets open") -- (fewer: an earlier test's garbage went)
    assert.is_true(lua < 256, "Lua memory grew by " .. lua .. " KiB")
    if not H.UNDER_ASAN then -- ASan's quarantine holds freed memory on purpose
      assert.is_true(rss < 8 * 1024, "RSS grew by " .. rss .. " KiB")
    end
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
