-- csock.getaddrinfo and name handling in bind/connect.
local csock = require "csock"
local H = require "helper"

describe("csock.getaddrinfo", function()
  it("resolves 'localhost' to entries with family, host and port", function()
    local list = csock.getaddrinfo("localhost", 80)
    assert.are.equal("table", type(list))
    assert.is_true(#list >= 1)
    local has_v4 = false
    for _, e in ipairs(list) do
      assert.is_truthy(e.family == "inet" or e.family == "inet6", e.family)
      assert.are.equal(80, e.port)
      if e.family == "inet" then
        assert.are.equal("127.0.0.1", e.host)
        has_v4 = true
      else
        assert.are.equal("::1", e.host)
      end
    end
    assert.is_true(has_v4)
  end)

  it("lists a numeric IPv4 address once: {family='inet', host='127.0.0.1', port=8080}", function()
    assert.are.same({ { family = "inet", host = "127.0.0.1", port = 8080 } }, csock.getaddrinfo("127.0.0.1", 8080))
  end)

  it("lists a numeric IPv6 address once: {family='inet6', host='::1', port=443}", function()
    assert.are.same({ { family = "inet6", host = "::1", port = 443 } }, csock.getaddrinfo("::1", 443))
  end)

  it("filters by family", function()
    assert.are.same({ { family = "inet", host = "127.0.0.1", port = 80 } }, csock.getaddrinfo("localhost", 80, "inet"))
    assert.are.same({ { family = "inet6", host = "::1", port = 443 } }, csock.getaddrinfo("::1", 443, "inet6"))
  end)

  it("takes a socket type: dgram lists each address once too", function()
    assert.are.same({ { family = "inet", host = "127.0.0.1", port = 53 } },
      csock.getaddrinfo("127.0.0.1", 53, "inet", "dgram"))
  end)

  it("canonicalises the numeric form of an address", function()
    assert.are.same({ { family = "inet6", host = "::1", port = 1 } },
      csock.getaddrinfo("0:0:0:0:0:0:0:1", 1))
  end)

  it("returns port 0 when no port is given", function()
    local list = csock.getaddrinfo("127.0.0.1")
    assert.are.same({ { family = "inet", host = "127.0.0.1", port = 0 } }, list)
  end)

  it("returns nil and a message (no errno) for a name that does not resolve", function()
    local r = table.pack(csock.getaddrinfo("no-such-host.invalid", 80))
    assert.are.equal(2, r.n)
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    assert.is_true(#r[2] > 0)
    assert.are.equal(r[2]:sub(1, 1):lower(), r[2]:sub(1, 1))
  end)

  it("returns nil and a message when the family does not match a numeric address", function()
    local r = table.pack(csock.getaddrinfo("127.0.0.1", 80, "inet6"))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
  end)
end)

describe("host names in bind and connect", function()
  it("an unresolvable host in connect returns nil and a message", function()
    local c = csock.socket()
    c:settimeout(H.TIMEOUT)
    local r = table.pack(c:connect("no-such-host.invalid", 80))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    c:close()
  end)

  it("an unresolvable host in bind returns nil and a message", function()
    local s = csock.socket()
    local r = table.pack(s:bind("no-such-host.invalid", 0))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    s:close()
  end)

  it("an inet6 socket binds the '::1' literal and reports it", function()
    local s = csock.socket("inet6")
    assert.are.equal(true, s:bind("::1", 0))
    assert.are.equal("::1", (s:getsockname()))
    s:close()
  end)

  it("an inet socket refuses an IPv6 literal with nil and a message", function()
    local s = csock.socket("inet")
    local r = table.pack(s:bind("::1", 0))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    s:close()
  end)
end)
