-- Bad input: the numbers at the edges of the number line (2^53,
-- math.maxinteger/mininteger, 2^63, inf, -inf, NaN) for every port, backlog,
-- count, time and socket option (recv(2^53) returns what is there, it does
-- not try to allocate 2^53 bytes).
--
-- Each case gets a Lua error (pcall false and a message) or nil, message:
-- never a crash, never a wrapped or truncated number. After each one the
-- socket, or the loop, is checked to be usable still (H.assert_usable,
-- H.assert_loop_usable). See also spec/badargs_spec.lua.
local csock = require "csock"
local H = require "helper"

local E = csock.errno
local NaN, INF = 0 / 0, math.huge
local BIG = 2 ^ 53                      -- a float holding an integer
local MAXI, MINI = math.maxinteger, math.mininteger
local NOINT = 2 ^ 63                    -- a float with no integer representation
local show, assert_usable, assert_loop_usable = H.show, H.assert_usable, H.assert_loop_usable

local BAD_PORTS = { BIG, MAXI, MINI, INF, -INF, NaN, NOINT, 65536.0, -0.5 }

describe("ports: every value outside 0..65535 raises, never wraps", function()
  local h = function() end
  for _, p in ipairs(BAD_PORTS) do
    it(("port %s: bind, connect, sendto, getaddrinfo, csock.connect, csock.listen"):format(show(p)), function()
      local s = csock.socket()
      H.assert_raises(nil, s.bind, s, "127.0.0.1", p)
      H.assert_raises(nil, s.connect, s, "127.0.0.1", p)
      s:close()
      local u = csock.socket("inet", "dgram")
      H.assert_raises(nil, u.sendto, u, "x", "127.0.0.1", p)
      u:close()
      local u6 = csock.socket("inet6", "dgram")
      H.assert_raises(nil, u6.sendto, u6, "x", "::1", p)
      u6:close()
      H.assert_raises(nil, csock.getaddrinfo, "localhost", p)
      H.assert_raises(nil, csock.connect, "127.0.0.1", p)
      H.assert_raises(nil, csock.listen, "127.0.0.1", p, h)
      assert_loop_usable()
    end)
  end
end)

describe("backlogs", function()
  for _, b in ipairs({ 65536, MAXI, BIG, MINI, -1, INF, NaN, NOINT }) do
    it(("sock:listen(%s) raises and the socket can listen afterwards"):format(show(b)), function()
      local s = csock.socket()
      assert(s:bind("127.0.0.1", 0))
      H.assert_raises(nil, s.listen, s, b)
      assert.are.equal(true, s:listen(4))
      s:close()
    end)
  end

  it("csock.listen{backlog = maxinteger} raises and leaves no socket open behind it", function()
    collectgarbage(); collectgarbage()
    local before = H.count_fds()
    H.assert_raises(nil, csock.listen, "127.0.0.1", 0, function() end, { backlog = MAXI })
    H.assert_raises(nil, csock.listen, "127.0.0.1", 0, function() end, { backlog = BIG })
    H.assert_raises(nil, csock.listen, "127.0.0.1", 0, function() end, { maxconnections = NaN })
    collectgarbage(); collectgarbage()
    assert.are.equal(before, H.count_fds())
    assert_loop_usable()
  end)
end)

describe("counts and limits: huge values never allocate what they ask", function()
  local bad_counts = { MINI, -INF, NaN, NOINT, -BIG, INF }
  for _, n in ipairs(bad_counts) do
    it(("%s raises for recv, read, recvfrom, chunks, lines, setreadlimit; the pair stays usable"):format(show(n)), function()
      local c, s = H.tcp_pair()
      H.assert_raises(nil, s.recv, s, n)
      H.assert_raises(nil, s.read, s, n)
      H.assert_raises(nil, s.read, s, "l", n)
      H.assert_raises(nil, s.recvfrom, s, n)
      H.assert_raises(nil, s.chunks, s, n)
      H.assert_raises(nil, function() local it = s:lines(n) it() end)
      H.assert_raises(nil, s.setreadlimit, s, n)
      assert_usable(c, s)
      c:close(); s:close()
    end)
  end

  for _, n in ipairs({ BIG, MAXI }) do
    it(("recv(%s), read(%s), chunks(%s): return what is there"):format(show(n), show(n), show(n)), function()
      local c, s = H.tcp_pair()
      c:send("0123456789")
      H.sleep(0.02)
      assert.are.equal("0123456789", s:recv(n))
      c:send("abcdef")
      s:settimeout(0.1)
      -- read(n) waits for n bytes: the timeout comes, and nothing is lost
      assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, table.pack(s:read(n)))
      assert.are.equal("abc", s:read(3))
      c:send("ghi")
      c:close()
      assert.are.equal("defghi", s:read(n)) -- fewer only at the end of the stream
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read(n)))
      s:close()
      c, s = H.tcp_pair()
      c:send("chunk")
      c:close()
      local parts = {}
      for d in s:chunks(n) do parts[#parts + 1] = d end
      assert.are.same({ "chunk" }, parts)
      s:close()
    end)

    it(("recvfrom(%s) on a datagram socket returns the whole datagram"):format(show(n)), function()
      local a, b = csock.socket("inet", "dgram"), csock.socket("inet", "dgram")
      assert(b:bind("127.0.0.1", 0))
      local _, port = b:getsockname()
      b:settimeout(2)
      assert.are.equal(5000, a:sendto(string.rep("d", 5000), "127.0.0.1", port))
      local data, host = b:recvfrom(n)
      assert.are.equal(string.rep("d", 5000), data)
      assert.are.equal("127.0.0.1", host)
      a:close(); b:close()
    end)

    it(("setreadlimit(%s) is 'no practical limit': lines are read"):format(show(n)), function()
      local c, s = H.tcp_pair()
      assert.are.equal(true, s:setreadlimit(n))
      c:send(string.rep("x", 100000) .. "\nshort\n")
      assert.are.equal(100000, #s:read("l"))
      assert.are.equal("short", s:read("l"))
      c:close(); s:close()
    end)
  end

  it("send(data, i, j) with huge or tiny i and j follows string.sub", function()
    local c, s = H.tcp_pair()
    assert.are.equal(3, c:send("abc", MINI, MAXI))
    assert.are.equal(3, c:send("abc", -BIG))
    assert.are.equal(0, c:send("abc", 10))
    assert.are.equal(0, c:send("abc", 2, MINI))
    assert.are.equal(1, c:send("abc", -1, BIG))
    assert.are.equal("abcabcc", s:recv())
    H.assert_raises(nil, c.send, c, "abc", NOINT)
    H.assert_raises(nil, c.send, c, "abc", 1, NaN)
    assert_usable(c, s)
    c:close(); s:close()
  end)

  it("send(data, i) with i past the end of the data sends 0 bytes, whatever i is (no pointer past the string)", function()
    local c, s = H.tcp_pair()
    assert.are.same({ n = 1, 0 }, table.pack(c:send("abc", BIG)))
    assert.are.same({ n = 1, 0 }, table.pack(c:send("abc", MAXI)))
    assert.are.same({ n = 1, 0 }, table.pack(c:send("abc", MAXI, MAXI)))
    assert_usable(c, s)
    c:close(); s:close()
  end)
end)

describe("times: timeouts, sleeps, timers, waits", function()
  local bad_times = { -INF, NaN, -1e-9, MINI, -BIG }

  for _, t in ipairs(bad_times) do
    it(("%s raises for settimeout, select, waitfd, getaddrinfo, step, sleep, timer, cond:wait, connect, listen"):format(show(t)), function()
      local c, s = H.tcp_pair()
      H.assert_raises(nil, s.settimeout, s, t)
      H.assert_raises(nil, csock.select, { s }, {}, t)
      H.assert_raises(nil, csock.waitfd, s:fileno(), "r", t)
      H.assert_raises(nil, csock.getaddrinfo, "localhost", 80, nil, nil, t)
      H.assert_raises(nil, csock.step, t)
      H.assert_raises(nil, csock.sleep, t)
      H.assert_raises(nil, csock.timer, t, function() end)
      H.assert_raises(nil, csock.timer, 1, function() end, t)
      H.assert_raises(nil, csock.connect, "127.0.0.1", 80, { timeout = t })
      H.assert_raises(nil, csock.listen, "127.0.0.1", 0, function() end, { timeout = t })
      local r = table.pack(csock.run(function()
        local cond = csock.cond()
        return pcall(cond.wait, cond, t)
      end))
      assert.are.equal(false, r[1])
      assert.are.equal("string", type(r[2]))
      assert_usable(c, s)
      c:close(); s:close()
      assert_loop_usable()
    end)
  end

  it("wrong types for times raise: settimeout, select, waitfd, step, sleep, timer, cond:wait", function()
    local s = csock.socket()
    for _, v in ipairs({ "soon", {}, true }) do
      H.assert_raises(nil, s.settimeout, s, v)
      H.assert_raises(nil, csock.select, { s }, {}, v)
      H.assert_raises(nil, csock.waitfd, s:fileno(), "r", v)
      H.assert_raises(nil, csock.step, v)
      H.assert_raises(nil, csock.sleep, v)
      H.assert_raises(nil, csock.timer, v, function() end)
    end
    s:close()
    assert_loop_usable()
  end)

  for _, t in ipairs({ INF, BIG, MAXI, NOINT }) do
    it(("%s means 'no deadline' (never wraps into the past): recv, select, waitfd, cond:wait, getaddrinfo, connect wait for what comes"):format(show(t)), function()
      local c, s = H.tcp_pair()
      local r = {}
      csock.run(function()
        s:settimeout(t)
        csock.spawn(function()
          csock.sleep(0.05); c:send("1")
          csock.sleep(0.05); c:send("2")
        end)
        r.recv = s:recv()
        r.select = csock.select({ s }, {}, t)[1] == s
        r.recv2 = s:recv()
        r.waitfd = table.pack(csock.waitfd(c:fileno(), "w", t))
        local cond = csock.cond()
        csock.spawn(function() csock.sleep(0.05) cond:signal() end)
        r.cond = table.pack(cond:wait(t))
        r.gai = csock.getaddrinfo("localhost", 80, "inet", "stream", t)[1].host
        local _, port = s:getsockname()
        local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
        local k = csock.connect("127.0.0.1", select(2, l:getsockname()), { timeout = t })
        r.connect = k ~= nil
        if k then k:close() end
        l:close()
        r.port = port
      end)
      assert.are.equal("1", r.recv)
      assert.is_true(r.select)
      assert.are.equal("2", r.recv2)
      assert.are.same({ n = 1, true }, r.waitfd)
      assert.are.same({ n = 1, true }, r.cond)
      assert.are.equal("127.0.0.1", r.gai)
      assert.is_true(r.connect)
      assert_usable(c, s)
      c:close(); s:close()
      H.nothing_left()
    end)

    it(("timer(%s, fn) is set and can be cancelled; timer(0.01, fn, %s) fires once before it is"):format(show(t), show(t)), function()
      local fired = 0
      local far = csock.timer(t, function() fired = fired + 100 end)
      assert.are.equal(true, far:active())
      local rep = csock.timer(0.01, function(tm) fired = fired + 1 end, t)
      csock.run(function()
        csock.sleep(0.1)
        assert.are.equal(true, rep:cancel())
        assert.are.equal(true, far:cancel())
      end)
      assert.are.equal(1, fired)
      assert.are.equal(false, far:active())
      H.nothing_left()
    end)
  end

  it("a tiny positive time is a valid time: sleep(1e-300), settimeout(1e-300), timer(1e-300)", function()
    local c, s = H.tcp_pair()
    s:settimeout(1e-300) -- as good as 0: one look
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, table.pack(s:recv()))
    c:send("x")
    H.sleep(0.02)
    assert.are.equal("x", s:recv())
    csock.sleep(1e-300)
    local fired = false
    csock.timer(1e-300, function() fired = true end)
    csock.run()
    assert.is_true(fired)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("sleep(inf) in a task suspends only that task (child process: the task is left behind)", function()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local t = csock.spawn(function() csock.sleep(math.huge) end)
      local t2 = csock.spawn(function() csock.sleep(2^63) end)
      print(csock.step(0.05), t:status(), t2:status())
      local n = 0
      local tick = csock.spawn(function() for _ = 1, 3 do csock.sleep(0.01) n = n + 1 end end)
      tick:join()
      print(n, t:status())
      os.exit(0)
    ]])
    assert.are.same({ "true\twaiting\twaiting\n3\twaiting\n", 0 }, { peer:finish() })
  end)
end)

describe("socket options at the edges", function()
  local cases = {
    { "rcvbuf", 2 ^ 31 }, { "rcvbuf", MAXI }, { "rcvbuf", BIG }, { "rcvbuf", -1 }, { "rcvbuf", NaN },
    { "rcvbuf", INF }, { "sndbuf", MINI }, { "keepidle", 2 ^ 31 }, { "keepcnt", -1 },
    { "linger", -1 }, { "linger", 2 ^ 31 }, { "linger", MAXI }, { "linger", NaN }, { "linger", true },
    { "nodelay", 1 }, { "nodelay", "yes" }, { "reuseaddr", 0 },
  }
  for _, case in ipairs(cases) do
    it(("setoption(%q, %s) raises; the socket keeps working"):format(case[1], show(case[2])), function()
      local c, s = H.tcp_pair()
      H.assert_raises(nil, c.setoption, c, case[1], case[2])
      assert_usable(c, s)
      c:close(); s:close()
    end)
  end

  it("setsockopt/getsockopt with levels, names or values beyond a C int raise", function()
    local c, s = H.tcp_pair()
    for _, v in ipairs({ 2 ^ 31, MAXI, MINI, BIG, NaN, INF, NOINT }) do
      H.assert_raises(nil, c.setsockopt, c, v, csock.SO_REUSEADDR, 1)
      H.assert_raises(nil, c.setsockopt, c, csock.SOL_SOCKET, v, 1)
      H.assert_raises(nil, c.setsockopt, c, csock.SOL_SOCKET, csock.SO_REUSEADDR, v)
      H.assert_raises(nil, c.getsockopt, c, v, csock.SO_REUSEADDR)
      H.assert_raises(nil, c.getsockopt, c, csock.SOL_SOCKET, v)
    end
    assert_usable(c, s)
    c:close(); s:close()
  end)

  it("values the kernel refuses give nil, message, errno", function()
    local c, s = H.tcp_pair()
    assert.are.same({ n = 3, nil, "invalid argument", E.EINVAL }, table.pack(c:setoption("keepidle", 0)))
    assert.are.same({ n = 3, nil, "protocol not available", E.ENOPROTOOPT },
      table.pack(c:setsockopt(csock.SOL_SOCKET, 99999, 1)))
    assert.are.same({ n = 3, nil, "protocol not available", E.ENOPROTOOPT },
      table.pack(c:getsockopt(csock.SOL_SOCKET, 99999)))
    assert_usable(c, s)
    c:close(); s:close()
  end)
end)
