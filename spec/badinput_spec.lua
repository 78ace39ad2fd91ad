-- Bad input beyond spec/badargs_spec.lua: the numbers at the edges of the
-- number line (2^53, math.maxinteger/mininteger, 2^63, inf, -inf, NaN) for
-- every count, port, backlog, time and option; "\0", empty and over-long
-- names and paths; wrong `self` for task, timer, cond and server methods;
-- argument and result lists longer than the C stack's guaranteed room.
--
-- Each case gets a Lua error (pcall false and a message) or nil, message:
-- never a crash, never a wrapped or truncated number (recv(2^53) returns
-- what is there, it does not try to allocate 2^53 bytes). After each one
-- the socket, or the loop, is checked to be usable still. Cases that could
-- crash the process run in a child, so a crash fails one test, not the run.
local csock = require "csock"
local H = require "helper"

local E = csock.errno
local NaN, INF = 0 / 0, math.huge
local BIG = 2 ^ 53                      -- a float holding an integer
local MAXI, MINI = math.maxinteger, math.mininteger
local NOINT = 2 ^ 63                    -- a float with no integer representation

local function show(v)
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if v ~= v then return "NaN" end
  if v == INF then return "inf" elseif v == -INF then return "-inf" end
  if v == BIG then return "2^53" elseif v == NOINT then return "2^63" end
  if v == MAXI then return "maxinteger" elseif v == MINI then return "mininteger" end
  return tostring(v)
end

local function describe_args(args)
  local t = {}
  for i = 1, args.n or #args do t[i] = show(args[i]) end
  return table.concat(t, ", ")
end


-- a connected pair still carries bytes both ways
local function assert_usable(c, s)
  c:settimeout(5); s:settimeout(5)
  assert.are.equal(c, c:write("still\n"))
  assert.are.equal("still", s:read("l"))
  assert.are.equal(3, s:send("ok\n"))
  assert.are.equal("ok", c:read("l"))
end

-- the loop still runs tasks
local function assert_loop_usable()
  assert.are.same({ n = 1, 42 }, table.pack(csock.run(function()
    csock.sleep(0)
    return 42
  end)))
  H.nothing_left()
end

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

describe("names and paths", function()
  it("csock.listen with '\\0' in the host raises (never binds the part before the zero)", function()
    local h = function() end
    for _, host in ipairs({ "127.0.0.1\0junk", "::1\0junk", "*\0", "local\0host" }) do
      H.assert_raises(nil, csock.listen, host, 0, h)
    end
    assert_loop_usable()
  end)

  it("host names that cannot resolve (empty, 10,000 bytes, a 300-label name) give nil, message", function()
    for _, host in ipairs({ "", string.rep("a", 10000), string.rep("a.", 300) .. "invalid" }) do
      local r = table.pack(csock.getaddrinfo(host, 80))
      assert.is_nil(r[1])
      assert.are.equal("string", type(r[2]))
      r = table.pack(csock.connect(host, 80, { timeout = 2 }))
      assert.is_nil(r[1])
      assert.are.equal("string", type(r[2]))
      local s = csock.socket()
      r = table.pack(s:bind(host, 0))
      assert.is_nil(r[1])
      assert.are.equal("string", type(r[2]))
      s:close()
    end
  end)

  it("a unix path of 107 bytes (the most sun_path holds) works; 108 bytes raises 'path too long'", function()
    local function exists(p) return os.execute("test -e '" .. p .. "'") == true end
    local path = "/tmp/" .. string.rep("p", 102)
    os.remove(path)
    finally(function() os.remove(path) end)
    assert.are.equal(107, #path)
    local l = csock.socket("unix")
    assert.are.equal(true, l:bind(path))
    assert.are.equal(path, l:getsockname())
    assert(l:listen())
    local c = assert(csock.connect(path, { timeout = 2 }))
    local a = assert(l:accept())
    assert_usable(c, a)
    c:close(); a:close(); l:close()
    os.remove(path)
    local long = path .. "q"
    local u = csock.socket("unix")
    for _, call in ipairs({ function() return u:bind(long) end, function() return u:connect(long) end,
                            function() return csock.connect(long) end }) do
      local err = H.assert_raises(nil, call)
      assert.is_truthy(err:find("path too long", 1, true), err)
    end
    local d = csock.socket("unix", "dgram")
    local err = H.assert_raises(nil, d.sendto, d, "x", long)
    assert.is_truthy(err:find("path too long", 1, true), err)
    d:close()
    -- nothing was made under the name cut to fit
    assert.is_false(exists(path))
    assert.is_false(exists(long))
    u:close()
  end)

  it("an empty unix path fails (nil, message or an error): it is not silently the abstract address \"\\0\"", function()
    local u = csock.socket("unix")
    local ok, r = pcall(function() return table.pack(u:bind("")) end)
    if ok then
      assert.is_nil(r[1], "bind('') succeeded")
      assert.are.equal("string", type(r[2]))
    end
    u:close()
    local c = csock.socket("unix")
    ok, r = pcall(function() return table.pack(c:connect("")) end)
    if ok then assert.is_nil(r[1]) end
    c:close()
  end)

  it("read formats that file:read knows but csock does not ('n') raise", function()
    local c, s = H.tcp_pair()
    c:send("12\n")
    H.assert_raises(nil, s.read, s, "n")
    H.assert_raises(nil, s.read, s, "*n")
    assert.are.equal("12", s:read("l"))
    c:close(); s:close()
  end)

  it("shutdown with a number or an unknown mode raises; the socket keeps working", function()
    local c, s = H.tcp_pair()
    H.assert_raises(nil, c.shutdown, c, 1)
    H.assert_raises(nil, c.shutdown, c, "wr")
    H.assert_raises(nil, c.shutdown, c, {})
    assert_usable(c, s)
    c:close(); s:close()
  end)
end)

describe("wrong self and wrong types for the loop's objects", function()
  it("task, timer and cond methods called on other values raise", function()
    local task = csock.spawn(function() end)
    local timer = csock.timer(10, function() end)
    local cond = csock.cond()
    local join, status = task.join, task.status
    local cancel, active = timer.cancel, timer.active
    local wait, signal, broadcast = cond.wait, cond.signal, cond.broadcast
    local s = csock.socket()
    for _, v in ipairs({ 5, "x", {}, true, s, print }) do
      H.assert_raises(nil, join, v)
      H.assert_raises(nil, status, v)
      H.assert_raises(nil, cancel, v)
      H.assert_raises(nil, active, v)
      H.assert_raises(nil, wait, v)
      H.assert_raises(nil, signal, v)
      H.assert_raises(nil, broadcast, v)
    end
    -- a task is not a timer, a timer is not a cond, a cond is not a task
    H.assert_raises(nil, cancel, task)
    H.assert_raises(nil, wait, timer)
    H.assert_raises(nil, join, cond)
    H.assert_raises(nil, s.recv, task)
    s:close()
    timer:cancel()
    assert.are.same({ n = 0 }, table.pack(task:join()))
    assert_loop_usable()
  end)

  it("csock.spawn, run, timer, onerror, signal, _serve with wrong types raise, and change nothing", function()
    local function blocked()
      for line in io.lines("/proc/self/status") do
        local v = line:match("^SigBlk:%s+(%x+)")
        if v then return v end
      end
    end
    local before = blocked()
    for _, v in ipairs({ 5, "x", {}, true }) do
      H.assert_raises(nil, csock.spawn, v)
      H.assert_raises(nil, csock.timer, 1, v)
      H.assert_raises(nil, csock.onerror, v)
      H.assert_raises(nil, csock.signal, "USR1", v) -- the name is fine, the handler is not
      H.assert_raises(nil, csock.signal, v, function() end)
    end
    H.assert_raises(nil, csock.signal, "NOPE", function() end)
    H.assert_raises(nil, csock.signal, "SIGKILL", function() end)
    H.assert_raises(nil, csock._serve, {}, print)
    H.assert_raises(nil, csock._serve, csock.socket(), "not a function")
    H.assert_raises(nil, csock._serve, csock.socket(), print, -1)
    H.assert_raises(nil, csock._serve, csock.socket(), print, 1.5)
    H.assert_raises(nil, csock._serve, csock.socket(), print, nil, "soon")
    local closed = csock.socket(); closed:close()
    H.assert_raises(nil, csock._serve, closed, print)
    assert.are.equal(before, blocked(), "the signal mask changed")
    assert_loop_usable()
  end)

  it("server methods on a non-server raise; a closed server's close and getsockname", function()
    local server
    csock.run(function()
      server = assert(csock.listen("127.0.0.1", 0, function() end))
      -- written in Lua: the error is Lua's own ("attempt to index ...")
      assert.is_false(pcall(server.close, {}))
      assert.is_false(pcall(server.getsockname, 5))
      local host, port = server:getsockname()
      assert.are.equal("127.0.0.1", host)
      assert.are.equal("integer", math.type(port))
      assert.are.equal(true, server:close())
    end)
    assert.are.equal(true, server:close())
    local err = H.assert_raises(nil, server.getsockname, server) -- its socket is closed
    assert.is_truthy(err:find("attempt to use a closed socket", 1, true), err)
    H.nothing_left()
  end)

  it("csock.connect with options that are not a table raises", function()
    for _, opts in ipairs({ "fast", 5, true }) do
      local ok, err = pcall(csock.connect, "127.0.0.1", H.free_port(), opts)
      assert.is_false(ok, "csock.connect(host, port, " .. show(opts) .. ") did not raise")
      assert.is_falsy(tostring(err):find("attempt to index", 1, true), err)
    end
  end)

  it("csock.listen{reuseport = <not a boolean>} raises like the other options", function()
    local ok, r = pcall(csock.listen, "127.0.0.1", 0, function() end, { reuseport = "yes" })
    if ok and r then r:close() end
    assert.is_false(ok, "reuseport = 'yes' was accepted")
    H.nothing_left()
  end)
end)

describe("inputs past the C stack's guaranteed room (run in a child: a crash fails only this test)", function()
  local function child(code)
    local out, status = H.spawn_peer(code):finish()
    return out, status
  end

  it("read with 2..3000 formats returns one value per format (or raises), never overruns the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local H = require "helper"
      local c, s = H.tcp_pair()
      for n = 2, 3000, 7 do
        c:send(string.rep("x", n))
        local fmts = {}
        for i = 1, n do fmts[i] = 1 end
        local ok, r = pcall(function() return table.pack(s:read(table.unpack(fmts))) end)
        if ok and r.n ~= n then print("read with " .. n .. " formats returned " .. r.n .. " values") os.exit(1) end
        if not ok then s:read(n) end -- raised: take the bytes
      end
      print("ok")
    ]])
    assert.are.same({ "ok\n", 0 }, { out, code })
  end)

  it("csock.spawn and csock.run with 5,000 arguments pass them all (or raise), never overrun the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local args = {}
      for i = 1, 5000 do args[i] = i end
      local ok, n = pcall(function()
        return csock.spawn(function(...) return select("#", ...) end, table.unpack(args)):join()
      end)
      print("spawn", ok and n or "raised")
      ok, n = pcall(csock.run, function(...) return select("#", ...) end, table.unpack(args))
      print("run", ok and n or "raised")
    ]])
    assert.are.same({ "spawn\t5000\nrun\t5000\n", 0 }, { out, code })
  end)

  it("a task returning 5,000 values: join and run return them all (or raise), never overrun the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local function many()
        local v = {}
        for i = 1, 5000 do v[i] = i end
        return table.unpack(v)
      end
      local ok, r = pcall(function() return table.pack(csock.spawn(many):join()) end)
      print("join", ok and r.n or "raised")
      ok, r = pcall(function() return table.pack(csock.run(many)) end)
      print("run", ok and r.n or "raised")
    ]])
    assert.are.same({ "join\t5000\nrun\t5000\n", 0 }, { out, code })
  end)

  it("select with a table whose __len lies raises", function()
    for _, len in ipairs({ -5, 1.5, 3 }) do
      local liar = setmetatable({}, { __len = function() return len end })
      H.assert_raises(nil, csock.select, liar, {}, 0)
      H.assert_raises(nil, csock.select, {}, liar, 0)
      local r = table.pack(csock.run(function() return pcall(csock.select, liar, {}, 0.05) end))
      assert.are.equal(false, r[1])
    end
    assert_loop_usable()
  end)

  it("write with 5,000 arguments and select with 5,000 sockets work", function()
    local c, s = H.tcp_pair()
    local parts = {}
    for i = 1, 5000 do parts[i] = "x" end
    assert.are.equal(c, c:write(table.unpack(parts)))
    assert.are.equal(string.rep("x", 5000), s:read(5000))
    local many = {}
    for i = 1, 5000 do many[i] = c end
    local r, w = csock.select(many, many, 0)
    assert.are.equal(0, #r)
    assert.are.equal(5000, #w)
    c:close(); s:close()
  end)
end)

describe("edge cases of the loop", function()
  it("csock.waitfd on the fd of a csock socket the loop already watches, in a task, works", function()
    local c, s = H.tcp_pair()
    local r
    csock.run(function()
      s:settimeout(1)
      csock.spawn(function() csock.sleep(0.05) c:send("a") end)
      assert.are.equal("a", s:recv())            -- s is now watched by the loop
      csock.spawn(function() csock.sleep(0.05) c:send("b") end)
      r = table.pack(csock.waitfd(s:fileno(), "r", 1))
    end)
    assert.are.same({ n = 1, true }, r)
    assert.are.equal("b", s:recv())
    c:close(); s:close()
    H.nothing_left()
  end)
end)
