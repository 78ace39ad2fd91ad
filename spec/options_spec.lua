-- setoption/getoption by name, raw setsockopt/getsockopt, settimeout.
local csock = require "csock"
local H = require "helper"

describe("setoption / getoption", function()
  local flags = {
    { "reuseaddr", "inet", "stream" },
    { "reuseport", "inet", "stream" },
    { "keepalive", "inet", "stream" },
    { "nodelay", "inet", "stream" },
    { "broadcast", "inet", "dgram" },
    { "ipv6only", "inet6", "stream" },
  }
  for _, f in ipairs(flags) do
    local name, fam, typ = f[1], f[2], f[3]
    it(("round-trips the flag %s as a boolean (%s %s)"):format(name, fam, typ), function()
      local s = csock.socket(fam, typ)
      assert.are.equal(true, s:setoption(name, true))
      assert.are.equal(true, s:getoption(name))
      assert.are.equal(true, s:setoption(name, false))
      assert.are.equal(false, s:getoption(name))
      s:close()
    end)
  end

  for _, name in ipairs { "keepidle", "keepintvl", "keepcnt" } do
    it(("round-trips %s as an integer"):format(name), function()
      local s = csock.socket()
      assert.are.equal(true, s:setoption(name, 7))
      assert.are.equal(7, s:getoption(name))
      assert.are.equal("integer", math.type(s:getoption(name)))
      assert.are.equal(true, s:setoption(name, 30))
      assert.are.equal(30, s:getoption(name))
      s:close()
    end)
  end

  for _, name in ipairs { "rcvbuf", "sndbuf" } do
    it(("%s reads back at least the requested size (Linux doubles it)"):format(name), function()
      local s = csock.socket()
      assert.are.equal(true, s:setoption(name, 65536))
      local v = s:getoption(name)
      assert.are.equal("integer", math.type(v))
      assert.is_true(v >= 65536, name .. " = " .. tostring(v))
      assert.are.equal(v, s:getsockopt(csock.SOL_SOCKET, name == "rcvbuf" and csock.SO_RCVBUF or csock.SO_SNDBUF))
      s:close()
    end)
  end

  it("linger: false by default, seconds when set, false again when cleared", function()
    local s = csock.socket()
    assert.are.equal(false, s:getoption("linger"))
    assert.are.equal(true, s:setoption("linger", 5))
    assert.are.equal(5, s:getoption("linger"))
    assert.are.equal(true, s:setoption("linger", 0))
    assert.are.equal(0, s:getoption("linger"))
    assert.are.equal(true, s:setoption("linger", false))
    assert.are.equal(false, s:getoption("linger"))
    s:close()
  end)

  it("flags read back false on a fresh tcp socket (reuseaddr, keepalive, nodelay)", function()
    local s = csock.socket()
    assert.are.equal(false, s:getoption("reuseaddr"))
    assert.are.equal(false, s:getoption("keepalive"))
    assert.are.equal(false, s:getoption("nodelay"))
    s:close()
  end)

  it("options work on accepted sockets", function()
    local c, s = H.tcp_pair()
    assert.are.equal(true, s:setoption("nodelay", true))
    assert.are.equal(true, s:getoption("nodelay"))
    assert.are.equal(true, c:setoption("keepalive", true))
    assert.are.equal(true, c:getoption("keepalive"))
    c:close(); s:close()
  end)

  it("reuseaddr lets a second listener bind the port of a closed connection's listener", function()
    local l = csock.socket()
    assert.are.equal(true, l:setoption("reuseaddr", true))
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    local _, port = l:getsockname()
    l:close()
    local l2 = csock.socket()
    assert.are.equal(true, l2:setoption("reuseaddr", true))
    assert.are.equal(true, l2:bind("127.0.0.1", port))
    l2:close()
  end)

  it("reuseport lets two listeners share a port", function()
    local a, b = csock.socket(), csock.socket()
    assert(a:setoption("reuseport", true)); assert(b:setoption("reuseport", true))
    assert(a:bind("127.0.0.1", 0)); assert(a:listen())
    local _, port = a:getsockname()
    assert.are.equal(true, b:bind("127.0.0.1", port))
    assert.are.equal(true, b:listen())
    a:close(); b:close()
  end)

  it("a kernel refusal returns nil, message, errno (ipv6only on an inet socket)", function()
    local s = csock.socket("inet")
    local r = table.pack(s:setoption("ipv6only", true))
    assert.are.same({ n = 3, nil, "protocol not available", csock.errno.ENOPROTOOPT }, r)
    s:close()
  end)

  it("an unknown option name raises, for setoption and getoption", function()
    local s = csock.socket()
    assert.has_error(function() s:setoption("nosuchoption", true) end)
    assert.has_error(function() s:getoption("nosuchoption") end)
    s:close()
  end)
end)

describe("setsockopt / getsockopt", function()
  it("exports the Linux values of the common constants", function()
    assert.are.equal(1, csock.SOL_SOCKET)
    assert.are.equal(2, csock.SO_REUSEADDR)
    assert.are.equal(9, csock.SO_KEEPALIVE)
    assert.are.equal(8, csock.SO_RCVBUF)
    assert.are.equal(7, csock.SO_SNDBUF)
    assert.are.equal(6, csock.IPPROTO_TCP)
    assert.are.equal(1, csock.TCP_NODELAY)
    assert.are.equal(0, csock.IPPROTO_IP)
    assert.are.equal(41, csock.IPPROTO_IPV6)
  end)

  it("round-trips SO_REUSEADDR and agrees with getoption('reuseaddr')", function()
    local s = csock.socket()
    assert.are.equal(true, s:setsockopt(csock.SOL_SOCKET, csock.SO_REUSEADDR, 1))
    assert.are.equal(1, s:getsockopt(csock.SOL_SOCKET, csock.SO_REUSEADDR))
    assert.are.equal(true, s:getoption("reuseaddr"))
    assert.are.equal(true, s:setsockopt(csock.SOL_SOCKET, csock.SO_REUSEADDR, 0))
    assert.are.equal(0, s:getsockopt(csock.SOL_SOCKET, csock.SO_REUSEADDR))
    assert.are.equal(false, s:getoption("reuseaddr"))
    s:close()
  end)

  it("round-trips TCP_NODELAY at IPPROTO_TCP and agrees with setoption('nodelay')", function()
    local s = csock.socket()
    assert.are.equal(true, s:setoption("nodelay", true))
    assert.are.equal(1, s:getsockopt(csock.IPPROTO_TCP, csock.TCP_NODELAY))
    assert.are.equal(true, s:setsockopt(csock.IPPROTO_TCP, csock.TCP_NODELAY, 0))
    assert.are.equal(false, s:getoption("nodelay"))
    s:close()
  end)

  it("SO_KEEPALIVE round-trips", function()
    local s = csock.socket()
    assert.are.equal(true, s:setsockopt(csock.SOL_SOCKET, csock.SO_KEEPALIVE, 1))
    assert.are.equal(1, s:getsockopt(csock.SOL_SOCKET, csock.SO_KEEPALIVE))
    assert.are.equal(true, s:getoption("keepalive"))
    s:close()
  end)

  it("an unknown level/name returns nil, message, errno", function()
    local s = csock.socket()
    local r = table.pack(s:getsockopt(csock.SOL_SOCKET, 99999))
    assert.are.equal(3, r.n)
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    assert.are.equal(csock.errno.ENOPROTOOPT, r[3])
    s:close()
  end)
end)

describe("settimeout", function()
  it("returns true for a number, 0 and nil", function()
    local s = csock.socket()
    assert.are.equal(true, s:settimeout(1.5))
    assert.are.equal(true, s:settimeout(0))
    assert.are.equal(true, s:settimeout(nil))
    assert.are.equal(true, s:settimeout())
    s:close()
  end)

  it("nil removes a timeout: a later recv waits for data sent by a child", function()
    -- data arrives from another process 0.3 s later; with no timeout recv waits for it
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 5)
      H.sleep(0.3)
      c:send("late")
      c:close()
    ]], port)
    local s2 = l:accept()
    assert.is_truthy(s2)
    s2:settimeout(0.1)
    assert.are.equal(true, s2:settimeout(nil))
    local t, r = H.timed(s2.recv, s2)
    assert.are.equal("late", r[1])
    assert.is_true(t >= 0.2, "elapsed " .. t)
    assert.are.same({ "", 0 }, { peer:finish() })
    s2:close(); l:close()
  end)
end)
