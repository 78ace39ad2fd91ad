-- Programming errors raise a Lua error (never crash, never wrap or truncate):
-- wrong types, out-of-range numbers, unknown names, "\0" in names and paths,
-- over-long unix paths, and any use of a closed socket.
local csock = require "csock"
local H = require "helper"

local NaN = 0 / 0
local LONG_PATH = "/tmp/" .. string.rep("x", 200) -- sun_path holds 108 bytes

local function describe_args(args)
  local t = {}
  for i = 1, args.n do t[i] = H.show(args[i]) end
  return table.concat(t, ", ")
end

describe("module functions raise on bad arguments", function()
  local cases = {
    { "socket", { {} } },
    { "socket", { 1 } },
    { "socket", { "bogus" } },
    { "socket", { "inet", "bogus" } },
    { "socket", { "inet", {} } },
    { "socket", { "INET" } },
    { "getaddrinfo", {} },
    { "getaddrinfo", { {} } },
    { "getaddrinfo", { "localhost", -1 } },
    { "getaddrinfo", { "localhost", 65536 } },
    { "getaddrinfo", { "localhost", 1.5 } },
    { "getaddrinfo", { "localhost", "http" } },
    { "getaddrinfo", { "localhost", {} } },
    { "getaddrinfo", { "local\0host", 80 } },
    { "getaddrinfo", { "127.0.0.1\0evil", 80 } },
    { "getaddrinfo", { "localhost", 80, "bogus" } },
    { "getaddrinfo", { "localhost", 80, "inet", "bogus" } },
    { "getaddrinfo", { "localhost", 80, {} } },
    { "select", { "x", {} } },
    { "select", { {}, "x" } },
    { "select", { {}, {}, -1 } },
    { "select", { {}, {}, NaN } },
    { "select", { {}, {}, "x" } },
    { "select", { { "notasocket" }, {} } },
    { "select", { { {} }, {} } },
    { "select", { {}, { true } } },
    { "connect", {} },
    { "connect", { {}, 80 } },
    { "connect", { "127.0.0.1", -1 } },
    { "connect", { "127.0.0.1", 65536 } },
    { "connect", { "127.0.0.1", "x" } },
    { "connect", { "127.0.0.1", 80, { timeout = -1 } } },
    { "connect", { "127.0.0.1", 80, { timeout = NaN } } },
    { "connect", { "127.0.0.1\0evil", 80 } },
    { "connect", { "/tmp/a\0b" } },
  }
  for _, case in ipairs(cases) do
    local name, args = case[1], case[2]
    args.n = args.n or #args
    it(("csock.%s(%s)"):format(name, describe_args(args)), function()
      assert.are.equal("function", type(csock[name]))
      H.assert_raises(nil, csock[name], table.unpack(args, 1, args.n))
    end)
  end

  it("csock.connect(long unix path) raises 'path too long'", function()
    H.assert_raises("path too long", csock.connect, LONG_PATH)
  end)
end)

-- method cases: { family, type, method, args [, message pattern] };
-- args { n = 1 } stands for a single nil argument
local method_cases = {
  { "inet", "stream", "bind", { {}, 0 } },
  { "inet", "stream", "bind", { "127.0.0.1", -1 } },
  { "inet", "stream", "bind", { "127.0.0.1", 65536 } },
  { "inet", "stream", "bind", { "127.0.0.1", 1.5 } },
  { "inet", "stream", "bind", { "127.0.0.1", "x" } },
  { "inet", "stream", "bind", { "127.0.0.1", {} } },
  { "inet", "stream", "bind", { "127.0.0.1" } },
  { "inet", "stream", "bind", { "127.0.0\0.1", 0 } },
  { "inet6", "stream", "bind", { "::1", 70000 } },
  { "inet", "stream", "listen", { -1 } },
  { "inet", "stream", "listen", { "x" } },
  { "inet", "stream", "listen", { {} } },
  { "inet", "stream", "connect", { {}, 80 } },
  { "inet", "stream", "connect", { "127.0.0.1", -1 } },
  { "inet", "stream", "connect", { "127.0.0.1", 65536 } },
  { "inet", "stream", "connect", { "127.0.0.1" } },
  { "inet", "stream", "connect", { "127.0.0.1", 2.5 } },
  { "inet", "stream", "connect", { "local\0host", 80 } },
  { "inet", "stream", "send", {} },
  { "inet", "stream", "send", { {} } },
  { "inet", "stream", "send", { "x", {} } },
  { "inet", "stream", "send", { "x", 1, {} } },
  { "inet", "stream", "recv", { -1 } },
  { "inet", "stream", "recv", { "x" } },
  { "inet", "stream", "recv", { {} } },
  { "inet", "stream", "recv", { 1.5 } },
  { "inet", "dgram", "sendto", { {}, "127.0.0.1", 80 } },
  { "inet", "dgram", "sendto", { "x", "127.0.0.1", -1 } },
  { "inet", "dgram", "sendto", { "x", "127.0.0.1", 65536 } },
  { "inet", "dgram", "sendto", { "x", {}, 80 } },
  { "inet", "dgram", "sendto", { "x", "127.0.0.1" } },
  { "inet", "dgram", "sendto", { "x", "127.0\0.0.1", 80 } },
  { "inet", "dgram", "recvfrom", { -1 } },
  { "inet", "dgram", "recvfrom", { "x" } },
  { "inet", "stream", "shutdown", { "x" } },
  { "inet", "stream", "shutdown", { "rwx" } },
  { "inet", "stream", "shutdown", { "" } },
  { "inet", "stream", "shutdown", { "R" } },
  { "inet", "stream", "shutdown", { {} } },
  { "inet", "stream", "setoption", { "bogus", true } },
  { "inet", "stream", "setoption", { {}, true } },
  { "inet", "stream", "setoption", {} },
  { "inet", "stream", "setoption", { "rcvbuf", "big" } },
  { "inet", "stream", "setoption", { "rcvbuf", {} } },
  { "inet", "stream", "setoption", { "keepidle", "x" } },
  { "inet", "stream", "setoption", { "linger", "x" } },
  { "inet", "stream", "setoption", { "linger", {} } },
  { "inet", "stream", "getoption", { "bogus" } },
  { "inet", "stream", "getoption", { {} } },
  { "inet", "stream", "getoption", {} },
  { "inet", "stream", "settimeout", { -1 } },
  { "inet", "stream", "settimeout", { -0.5 } },
  { "inet", "stream", "settimeout", { NaN } },
  { "inet", "stream", "settimeout", { "x" } },
  { "inet", "stream", "settimeout", { {} } },
  { "inet", "stream", "setsockopt", { "a", 1, 1 } },
  { "inet", "stream", "setsockopt", { 1, "b", 1 } },
  { "inet", "stream", "setsockopt", { 1, 2, "x" } },
  { "inet", "stream", "setsockopt", { 1, 2, {} } },
  { "inet", "stream", "setsockopt", { 1, 2 } },
  { "inet", "stream", "getsockopt", { "a", 1 } },
  { "inet", "stream", "getsockopt", { 1, "b" } },
  { "inet", "stream", "getsockopt", { 1 } },
  { "inet", "stream", "read", { "x" } },
  { "inet", "stream", "read", { "*x" } },
  { "inet", "stream", "read", { "" } },
  { "inet", "stream", "read", { -1 } },
  { "inet", "stream", "read", { 1.5 } },
  { "inet", "stream", "read", { {} } },
  { "inet", "stream", "read", { true } },
  { "inet", "stream", "read", { "l", "bogus" } },
  { "inet", "stream", "write", { {} } },
  { "inet", "stream", "write", { true } },
  { "inet", "stream", "write", { "ok", {} } },
  { "inet", "stream", "write", { n = 1 } },
  { "inet", "stream", "readuntil", { "" } },
  { "inet", "stream", "readuntil", { n = 1 } },
  { "inet", "stream", "readuntil", { {} } },
  { "inet", "stream", "writeresp", { n = 0 } },
  { "inet", "stream", "writeresp", { n = 1 } },
  { "inet", "stream", "writeresp", { true } },
  { "inet", "stream", "writeresp", { 1.5 } },
  { "inet", "stream", "writeresp", { print } },
  { "inet", "stream", "writeresp", { { "ok", print } } },
  { "inet", "stream", "writeresp", { { err = "two\r\nlines" } } },
  { "inet", "stream", "writeresp", { { err = true } } },
  { "inet", "stream", "copyto", { n = 1 } },
  { "inet", "stream", "copyto", { {} } },
  { "inet", "stream", "copyto", { "x" } },
  { "inet", "stream", "setreadlimit", { -1 } },
  { "inet", "stream", "setreadlimit", { NaN } },
  { "inet", "stream", "setreadlimit", { "x" } },
  { "inet", "stream", "setreadlimit", { {} } },
  { "inet", "stream", "setreadlimit", {} },
  { "unix", "stream", "bind", { "/tmp/a\0b" } },
  { "unix", "stream", "bind", { {} } },
  { "unix", "stream", "bind", { LONG_PATH }, "path too long" },
  { "unix", "stream", "connect", { "/tmp/a\0b" } },
  { "unix", "stream", "connect", { LONG_PATH }, "path too long" },
  { "unix", "dgram", "sendto", { "x", "/tmp/a\0b" } },
  { "unix", "dgram", "sendto", { "x", LONG_PATH }, "path too long" },
  { "unix", "dgram", "sendto", { "x", {} } },
}

describe("methods raise on bad arguments and the socket stays usable", function()
  for _, case in ipairs(method_cases) do
    local fam, typ, method, pattern = case[1], case[2], case[3], case[5]
    local args = case[4]
    args.n = args.n or #args -- { n = 1 } stands for one nil argument
    it(("%s %s :%s(%s)"):format(fam, typ, method, describe_args(args)), function()
      local s = csock.socket(fam, typ)
      s:settimeout(0)
      assert.are.equal("function", type(s[method]))
      local err = H.assert_raises(pattern, s[method], s, table.unpack(args, 1, args.n))
      assert.is_falsy(tostring(err):find("closed socket", 1, true), tostring(err))
      -- the socket is still open and usable
      assert.are.equal("integer", math.type(s:fileno()))
      assert.are.equal(true, s:settimeout(1))
      assert.are.equal(true, s:close())
    end)
  end

  it("lines with an unknown format raises (at the call or at the first iteration)", function()
    local c, s = H.tcp_pair()
    c:send("x\n")
    H.assert_raises(nil, function()
      local it = s:lines("bogus")
      it()
    end)
    c:close(); s:close()
  end)

  it("lines with a negative count raises", function()
    local c, s = H.tcp_pair()
    c:send("x\n")
    H.assert_raises(nil, function()
      local it = s:lines(-1)
      it()
    end)
    c:close(); s:close()
  end)

  it("a method called on something that is not a csock socket raises", function()
    local s = csock.socket()
    H.assert_raises(nil, s.recv, "notasocket")
    H.assert_raises(nil, s.send, {}, "x")
    H.assert_raises(nil, s.fileno, nil)
    H.assert_raises(nil, s.close, io.stdout)
    H.assert_raises(nil, s.read, 42)
    s:close()
  end)

  it("host names with an embedded zero are never cut at the zero", function()
    -- "127.0.0.1\0junk" must not bind 127.0.0.1
    local s = csock.socket()
    H.assert_raises(nil, s.bind, s, "127.0.0.1\0junk", 0)
    assert.are.equal("0.0.0.0", (s:getsockname()))
    s:close()
  end)

  it("unix paths with an embedded zero are never cut at the zero", function()
    local path = H.tmpname()
    local s = csock.socket("unix")
    H.assert_raises(nil, s.bind, s, path .. "\0junk")
    assert.is_nil(io.open(path, "r"))
    s:close()
  end)
end)

describe("a closed socket", function()
  local uses = {
    { "bind", { "127.0.0.1", 0 } },
    { "listen", {} },
    { "accept", {} },
    { "connect", { "127.0.0.1", 1 } },
    { "send", { "x" } },
    { "recv", {} },
    { "sendto", { "x", "127.0.0.1", 1 } },
    { "recvfrom", {} },
    { "shutdown", {} },
    { "shutdown", { "w" } },
    { "setoption", { "reuseaddr", true } },
    { "getoption", { "reuseaddr" } },
    { "settimeout", { 1 } },
    { "settimeout", { n = 1 } },
    { "getsockname", {} },
    { "getpeername", {} },
    { "fileno", {} },
    { "setsockopt", { csock.SOL_SOCKET, csock.SO_REUSEADDR, 1 } },
    { "getsockopt", { csock.SOL_SOCKET, csock.SO_REUSEADDR } },
    { "read", {} },
    { "read", { "a" } },
    { "read", { 4 } },
    { "write", { "x" } },
    { "flush", {} },
    { "readresp", {} },
    { "readuntil", { "\n" } },
    { "writeresp", { "x" } },
    { "setreadlimit", { 10 } },
    { "copyto", { csock.socket() } },
  }
  for _, use in ipairs(uses) do
    local method, args = use[1], use[2]
    args.n = args.n or #args
    it((":%s(%s) raises 'attempt to use a closed socket'"):format(method, describe_args(args)), function()
      local s = csock.socket()
      s:close()
      assert.are.equal("function", type(s[method]))
      H.assert_raises("attempt to use a closed socket", s[method], s, table.unpack(args, 1, args.n))
    end)
  end

  it(":lines() raises 'attempt to use a closed socket' (at the call or the first iteration)", function()
    local s = csock.socket()
    s:close()
    H.assert_raises("attempt to use a closed socket", function()
      local it = s:lines()
      it()
    end)
  end)

  it("an accepted socket, once closed, raises on recv and send", function()
    local c, s = H.tcp_pair()
    s:close()
    H.assert_raises("attempt to use a closed socket", s.recv, s)
    H.assert_raises("attempt to use a closed socket", s.send, s, "x")
    c:close()
  end)

  it("closed by <close> raises on later use", function()
    local outer
    do
      local s <close> = csock.socket()
      outer = s
    end
    H.assert_raises("attempt to use a closed socket", outer.fileno, outer)
  end)

  it("close() returns true again, state() is 'CLOSED', tostring shows '(closed)'", function()
    local s = csock.socket("inet6", "dgram")
    assert.are.equal(true, s:close())
    assert.are.equal(true, s:close())
    assert.are.equal("CLOSED", s:state())
    assert.are.equal("csock.socket: inet6 dgram (closed)", tostring(s))
  end)
end)
