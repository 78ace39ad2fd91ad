-- Failures the OS or the peer cause: nil, message, errno. Refused connects,
-- addresses in use, EOF, resets, timeouts, SIGPIPE, and the errno table.
local csock = require "csock"
local H = require "helper"

local E = csock.errno

local function timeout_result()
  return { n = 3, nil, "timeout", E.ETIMEDOUT }
end

describe("csock.errno", function()
  it("maps names to Linux numbers", function()
    assert.are.equal(111, E.ECONNREFUSED)
    assert.are.equal(110, E.ETIMEDOUT)
    assert.are.equal(98, E.EADDRINUSE)
    assert.are.equal(32, E.EPIPE)
    assert.are.equal(104, E.ECONNRESET)
    assert.are.equal(2, E.ENOENT)
    assert.are.equal(92, E.ENOPROTOOPT)
    assert.are.equal(22, E.EINVAL)
  end)

  it("maps numbers back to names", function()
    assert.are.equal("ECONNREFUSED", E[111])
    assert.are.equal("ETIMEDOUT", E[110])
    assert.are.equal("EADDRINUSE", E[98])
    assert.are.equal("EPIPE", E[32])
    assert.are.equal("ECONNRESET", E[104])
  end)

  it("is consistent both ways for every entry", function()
    local names = 0
    for k, v in pairs(E) do
      if type(k) == "string" then
        names = names + 1
        assert.are.equal("integer", math.type(v), k)
        assert.are.equal("string", type(E[v]), k)
        assert.are.equal(v, E[E[v]], k)
      else
        assert.are.equal("integer", math.type(k))
        assert.are.equal(k, E[v])
      end
    end
    assert.is_true(names >= 20, "only " .. names .. " names")
  end)

  it("lists every name and every number once, and answers keys it has no entry for with nil", function()
    -- The table is filled from C on first use: pairs must still see every entry, once.
    local seen, n = {}, 0
    for k in pairs(E) do
      assert.is_nil(seen[k], tostring(k))
      seen[k], n = true, n + 1
    end
    local again = 0
    for _ in pairs(E) do again = again + 1 end
    assert.are.equal(n, again)
    assert.are.equal("ECONNREFUSED", E[111.0])
    assert.is_nil(E.ENOSUCHERROR)
    assert.is_nil(E[111.5])
    assert.is_nil(E[-1])
    assert.is_nil(E[true])
    assert.is_nil(E.econnrefused)
  end)
end)

describe("connect failures", function()
  it("to a closed inet port returns nil, 'connection refused', ECONNREFUSED", function()
    local port = H.free_port()
    local c = csock.socket()
    c:settimeout(H.TIMEOUT)
    assert.are.same({ n = 3, nil, "connection refused", E.ECONNREFUSED }, table.pack(c:connect("127.0.0.1", port)))
    c:close()
  end)

  it("to a closed inet6 port returns nil, 'connection refused', ECONNREFUSED", function()
    local port = H.free_port("inet6")
    local c = csock.socket("inet6")
    c:settimeout(H.TIMEOUT)
    assert.are.same({ n = 3, nil, "connection refused", E.ECONNREFUSED }, table.pack(c:connect("::1", port)))
    c:close()
  end)

  it("to a missing unix path returns nil, 'no such file or directory', ENOENT", function()
    local c = csock.socket("unix")
    assert.are.same({ n = 3, nil, "no such file or directory", E.ENOENT }, table.pack(c:connect(H.tmpname())))
    c:close()
  end)

  it("to a unix path whose listener closed returns nil, 'connection refused', ECONNREFUSED", function()
    local path = H.tmpname()
    local l = csock.socket("unix")
    assert(l:bind(path)); assert(l:listen())
    l:close()
    local c = csock.socket("unix")
    assert.are.same({ n = 3, nil, "connection refused", E.ECONNREFUSED }, table.pack(c:connect(path)))
    c:close()
    os.remove(path)
  end)

  it("times out with nil, 'timeout', ETIMEDOUT when the listener's backlog is full", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0)); assert(l:listen(0))
    local _, port = l:getsockname()
    local clients, result, elapsed = {}, nil, nil
    for i = 1, 10 do
      local c = csock.socket()
      clients[i] = c
      c:settimeout(0.3)
      elapsed, result = H.timed(c.connect, c, "127.0.0.1", port)
      if result[1] == nil then break end
    end
    assert.are.same(timeout_result(), result)
    assert.is_true(elapsed >= 0.29 and elapsed < 3, "elapsed " .. elapsed)
    for _, c in ipairs(clients) do c:close() end
    l:close()
  end)
end)

describe("unix connect to a full backlog", function()
  it("waits until the timeout like a blocking connect: nil, 'timeout', ETIMEDOUT", function()
    local path = H.tmpname()
    finally(function() os.remove(path) end)
    local l = csock.socket("unix")
    assert(l:bind(path)); assert(l:listen(0))
    local clients, result, elapsed = {}, nil, nil
    for i = 1, 10 do
      local c = csock.socket("unix")
      clients[i] = c
      c:settimeout(0.3)
      elapsed, result = H.timed(c.connect, c, path)
      if result[1] == nil then break end
    end
    assert.are.same(timeout_result(), result)
    assert.is_true(elapsed >= 0.29 and elapsed < 3, "elapsed " .. elapsed)
    for _, c in ipairs(clients) do c:close() end
    l:close()
  end)
end)

describe("bind failures", function()
  it("a second bind of a listening port returns nil, 'address already in use', EADDRINUSE", function()
    local a = csock.socket()
    assert(a:bind("127.0.0.1", 0)); assert(a:listen())
    local _, port = a:getsockname()
    local b = csock.socket()
    assert.are.same({ n = 3, nil, "address already in use", E.EADDRINUSE }, table.pack(b:bind("127.0.0.1", port)))
    a:close(); b:close()
  end)

  it("binding an existing unix path returns nil, 'address already in use', EADDRINUSE", function()
    local path = H.tmpname()
    local a = csock.socket("unix")
    assert(a:bind(path))
    local b = csock.socket("unix")
    assert.are.same({ n = 3, nil, "address already in use", E.EADDRINUSE }, table.pack(b:bind(path)))
    a:close(); b:close()
    os.remove(path)
  end)

  it("a second bind of a udp port returns nil, 'address already in use', EADDRINUSE", function()
    local a = csock.socket("inet", "dgram")
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local b = csock.socket("inet", "dgram")
    assert.are.same({ n = 3, nil, "address already in use", E.EADDRINUSE }, table.pack(b:bind("127.0.0.1", port)))
    a:close(); b:close()
  end)
end)

describe("calls the kernel rejects return nil, message, errno", function()
  it("getpeername on an unconnected socket: 'transport endpoint is not connected', ENOTCONN", function()
    local s = csock.socket()
    assert.are.same({ n = 3, nil, "transport endpoint is not connected", E.ENOTCONN }, table.pack(s:getpeername()))
    s:close()
  end)

  it("recv on an unconnected tcp socket: 'transport endpoint is not connected', ENOTCONN", function()
    local s = csock.socket()
    s:settimeout(1)
    assert.are.same({ n = 3, nil, "transport endpoint is not connected", E.ENOTCONN }, table.pack(s:recv()))
    s:close()
  end)

  it("accept on a socket that is not listening: 'invalid argument', EINVAL", function()
    local s = csock.socket()
    s:settimeout(1)
    assert(s:bind("127.0.0.1", 0))
    assert.are.same({ n = 3, nil, "invalid argument", E.EINVAL }, table.pack(s:accept()))
    s:close()
  end)

  it("send on an unconnected tcp socket: 'closed', EPIPE (and no SIGPIPE)", function()
    local s = csock.socket()
    s:settimeout(1)
    assert.are.same({ n = 3, nil, "closed", E.EPIPE }, table.pack(s:send("x")))
    s:close()
  end)

  it("state on a unix socket: 'operation not supported', EOPNOTSUPP", function()
    local s = csock.socket("unix")
    assert.are.same({ n = 3, nil, "operation not supported", E.EOPNOTSUPP }, table.pack(s:state()))
    s:close()
  end)
end)

describe("peer closed", function()
  for _, kind in ipairs { "inet", "inet6", "unix" } do
    it(kind .. ": recv and read give nil, 'closed' (two values) after the peer closes", function()
      local c, s
      if kind == "unix" then c, s = H.unix_pair() else c, s = H.tcp_pair(kind) end
      c:close()
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:recv()))
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:recv()))
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read("l")))
      assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read(10)))
      s:close()
    end)
  end

  it("a reset (peer closes with linger 0) gives nil, 'connection reset by peer', ECONNRESET; later reads still fail", function()
    local c, s = H.tcp_pair()
    assert(s:setoption("linger", 0))
    s:close()
    assert.are.same({ n = 3, nil, "connection reset by peer", E.ECONNRESET }, table.pack(c:recv()))
    local r = table.pack(c:recv())
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    r = table.pack(c:read("l"))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    c:close()
  end)

  it("a reset is reported by write too, and later writes keep failing", function()
    local c, s = H.tcp_pair()
    assert(s:setoption("linger", 0))
    s:close()
    local r = table.pack(c:write("x"))
    assert.is_nil(r[1])
    assert.is_truthy(r[2] == "connection reset by peer" or r[2] == "closed", r[2])
    r = table.pack(c:write("y"))
    assert.is_nil(r[1])
    assert.is_truthy(r[2] == "connection reset by peer" or r[2] == "closed", r[2])
    c:close()
  end)

  it("SIGPIPE never kills: writing twice to a closed peer returns nil, message and the process lives", function()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c, s = H.tcp_pair()
      s:close()
      local function show(...) print(select("#", ...), ...) end
      show(c:send("first"))
      H.sleep(0.1)
      show(c:send("second"))
      show(c:send("third"))
      show(c:write("fourth"))
      local u1, u2 = H.unix_pair()
      u2:close()
      show(u1:send("unix"))
      show(u1:write("unix"))
      print("alive")
    ]])
    local out, code = peer:finish()
    assert.are.equal(0, code, out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(7, #lines, out)
    assert.are.equal("1\t5", lines[1]) -- the kernel takes the first write
    local reset = ("3\tnil\tconnection reset by peer\t%d"):format(E.ECONNRESET)
    local pipe = ("3\tnil\tclosed\t%d"):format(E.EPIPE)
    for i = 2, 6 do
      assert.is_truthy(lines[i] == reset or lines[i] == pipe, "line " .. i .. ": " .. lines[i])
    end
    assert.are.equal(pipe, lines[4])
    assert.are.equal("alive", lines[7])
  end)

  it("SIGPIPE never kills this process either", function()
    local c, s = H.tcp_pair()
    s:close()
    for _ = 1, 5 do c:send("data") end
    local r = table.pack(c:send("data"))
    assert.is_nil(r[1])
    assert.are.same({ n = 3, nil, "closed", E.EPIPE }, r)
    c:close()
  end)
end)

describe("timeouts", function()
  it("accept with settimeout(0.2) returns nil, 'timeout', ETIMEDOUT after about 0.2 s", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    l:settimeout(0.2)
    local t, r = H.timed(l.accept, l)
    assert.are.same(timeout_result(), r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    l:close()
  end)

  it("recv with settimeout(0.2) returns nil, 'timeout', ETIMEDOUT after about 0.2 s", function()
    local c, s = H.tcp_pair()
    s:settimeout(0.2)
    local t, r = H.timed(s.recv, s)
    assert.are.same(timeout_result(), r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    c:close(); s:close()
  end)

  it("read with settimeout(0.2) returns nil, 'timeout', ETIMEDOUT after about 0.2 s", function()
    local c, s = H.tcp_pair()
    s:settimeout(0.2)
    local t, r = H.timed(s.read, s, "l")
    assert.are.same(timeout_result(), r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    c:close(); s:close()
  end)

  it("recvfrom on a udp socket with settimeout(0.2) returns nil, 'timeout', ETIMEDOUT", function()
    local u = csock.socket("inet", "dgram")
    assert(u:bind("127.0.0.1", 0))
    u:settimeout(0.2)
    local t, r = H.timed(u.recvfrom, u)
    assert.are.same(timeout_result(), r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    u:close()
  end)

  it("settimeout(0) makes accept, recv, read and recvfrom time out at once", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    l:settimeout(0)
    local c, s = H.tcp_pair()
    s:settimeout(0)
    local u = csock.socket("inet", "dgram")
    assert(u:bind("127.0.0.1", 0))
    u:settimeout(0)
    local t0 = H.now()
    assert.are.same(timeout_result(), table.pack(l:accept()))
    assert.are.same(timeout_result(), table.pack(s:recv()))
    assert.are.same(timeout_result(), table.pack(s:read("l")))
    assert.are.same(timeout_result(), table.pack(u:recvfrom()))
    assert.is_true(H.now() - t0 < 0.2)
    l:close(); c:close(); s:close(); u:close()
  end)

  it("settimeout(0) still returns data that is already there", function()
    local c, s = H.tcp_pair()
    s:settimeout(0)
    c:send("ready\n")
    assert.are.equal("ready", s:read("l"))
    c:send("more")
    assert.are.equal("more", s:recv())
    c:close(); s:close()
  end)

  it("an accepted socket has no timeout of its own (inherits none from the listener)", function()
    -- the listener has a 1 s timeout; the child connects, then sends 1.5 s
    -- later: the accepted socket must wait for it rather than time out at 1 s.
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    l:settimeout(1)
    local _, port = l:getsockname()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 5)
      H.sleep(1.5)
      c:send("late")
      c:close()
    ]], port)
    local s = l:accept()
    assert.is_truthy(s, "the child did not connect within 1 s")
    local t, r = H.timed(s.recv, s)
    assert.are.equal("late", r[1])
    assert.is_true(t >= 1, "elapsed " .. t)
    assert.are.same({ "", 0 }, { peer:finish() })
    s:close(); l:close()
  end)
end)
