-- Bad input: "\0", empty and over-long names and paths.
--
-- Each case gets a Lua error (pcall false and a message) or nil, message:
-- never a crash, never a wrapped or truncated number. After each one the
-- socket, or the loop, is checked to be usable still (H.assert_usable,
-- H.assert_loop_usable). See also spec/badargs_spec.lua.
local csock = require "csock"
local H = require "helper"

local assert_usable, assert_loop_usable = H.assert_usable, H.assert_loop_usable

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
