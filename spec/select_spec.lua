-- csock.select: readiness of sockets and fds, timeouts, buffered bytes,
-- and more than 1024 descriptors.
local csock = require "csock"
local H = require "helper"

describe("csock.select", function()
  it("reports a socket readable after its peer writes", function()
    local c, s = H.tcp_pair()
    c:send("x")
    local r, w = csock.select({ s }, {}, 1)
    assert.are.same({ s }, r)
    assert.are.same({}, w)
    assert.are.equal(s, r[1]) -- the same object, not a copy
    c:close(); s:close()
  end)

  it("reports a fresh connected socket writable", function()
    local c, s = H.tcp_pair()
    local r, w = csock.select({}, { c }, 1)
    assert.are.same({}, r)
    assert.are.equal(1, #w)
    assert.are.equal(c, w[1])
    c:close(); s:close()
  end)

  it("returns two empty arrays and 'timeout' when nothing is ready", function()
    local c, s = H.tcp_pair()
    local t, res = H.timed(csock.select, { s, c }, {}, 0.2)
    assert.are.equal(3, res.n)
    assert.are.same({}, res[1])
    assert.are.same({}, res[2])
    assert.are.equal("timeout", res[3])
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    c:close(); s:close()
  end)

  it("with timeout 0 polls once and returns at once", function()
    local c, s = H.tcp_pair()
    local t, res = H.timed(csock.select, { s }, {}, 0)
    assert.are.same({}, res[1])
    assert.are.same({}, res[2])
    assert.are.equal("timeout", res[3])
    assert.is_true(t < 0.1, "elapsed " .. t)
    c:send("y")
    local r = csock.select({ s }, {}, 0)
    assert.are.same({ s }, r)
    c:close(); s:close()
  end)

  it("with empty arrays waits for the timeout", function()
    local t, res = H.timed(csock.select, {}, {}, 0.1)
    assert.are.same({}, res[1])
    assert.are.same({}, res[2])
    assert.are.equal("timeout", res[3])
    assert.is_true(t >= 0.09 and t < 2, "elapsed " .. t)
  end)

  it("returns only the ready sockets, in both arrays at once", function()
    local c1, s1 = H.tcp_pair()
    local c2, s2 = H.tcp_pair()
    c2:send("z")
    local r, w = csock.select({ s1, s2 }, { c1 }, 1)
    assert.are.same({ s2 }, r)
    assert.are.same({ c1 }, w)
    c1:close(); s1:close(); c2:close(); s2:close()
  end)

  it("accepts integer fds and returns them as given", function()
    local c, s = H.tcp_pair()
    c:send("x")
    local r, w = csock.select({ s:fileno() }, { c:fileno() }, 1)
    assert.are.same({ s:fileno() }, r)
    assert.are.same({ c:fileno() }, w)
    c:close(); s:close()
  end)

  it("reports a listener readable when a connection is pending", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0)); assert(l:listen())
    local _, port = l:getsockname()
    local r = csock.select({ l }, {}, 0)
    assert.are.same({}, r)
    local c = csock.socket()
    c:settimeout(H.TIMEOUT)
    assert(c:connect("127.0.0.1", port))
    r = csock.select({ l }, {}, 1)
    assert.are.same({ l }, r)
    l:close(); c:close()
  end)

  it("reports a socket readable at EOF", function()
    local c, s = H.tcp_pair()
    c:close()
    assert.are.same({ s }, (csock.select({ s }, {}, 1)))
    s:close()
  end)

  it("reports a udp socket readable when a datagram waits", function()
    local a, b = csock.socket("inet", "dgram"), csock.socket("inet", "dgram")
    assert(b:bind("127.0.0.1", 0))
    local _, port = b:getsockname()
    a:sendto("d", "127.0.0.1", port)
    assert.are.same({ b }, (csock.select({ b }, {}, 1)))
    a:close(); b:close()
  end)

  it("counts buffered unread bytes as readable at once", function()
    local c, s = H.tcp_pair()
    c:send("a\nb")
    assert.are.equal("a", s:read("l"))
    -- the kernel has nothing left; "b" sits in the read buffer
    local t, res = H.timed(csock.select, { s }, {}, 1)
    assert.are.same({ s }, res[1])
    assert.is_true(t < 0.5, "elapsed " .. t)
    assert.are.equal("b", s:recv())
    assert.are.same({}, (csock.select({ s }, {}, 0)))
    c:close(); s:close()
  end)

  it("a nil timeout waits until a socket is ready", function()
    local c, s = H.tcp_pair()
    c:send("now")
    local r = csock.select({ s }, {}, nil)
    assert.are.same({ s }, r)
    r = csock.select({ s }, {})
    assert.are.same({ s }, r)
    c:close(); s:close()
  end)

  it("returns nil, 'invalid argument', EINVAL when given more entries than the open-file limit", function()
    local limit = H.max_fds()
    if limit > 100000 then
      pending("the open-file limit is too high to exceed cheaply")
      return
    end
    local c, s = H.tcp_pair()
    local many = {}
    for i = 1, limit + 10 do many[i] = s end
    assert.are.same({ n = 3, nil, "invalid argument", csock.errno.EINVAL }, table.pack(csock.select(many, {}, 0)))
    c:close(); s:close()
  end)

  it("handles descriptors above 1024 (no FD_SETSIZE limit)", function()
    if H.max_fds() < 1300 then
      pending("the open-file limit is below 1300")
      return
    end
    local filler = {}
    for i = 1, 1100 do filler[i] = csock.socket("inet", "dgram") end
    local c, s = H.tcp_pair()
    assert.is_true(s:fileno() > 1024, "fd " .. s:fileno())
    local r = csock.select({ s }, { c }, 0.1)
    assert.are.same({}, r)
    c:send("high")
    local w
    r, w = csock.select({ s }, { c }, 1)
    assert.are.same({ s }, r)
    assert.are.same({ c }, w)
    assert.are.equal("high", s:recv())
    c:close(); s:close()
    for _, f in ipairs(filler) do f:close() end
  end)
end)
