-- csock.connect(host, port[, opts]) and csock.connect(path): the Lua-level
-- helper that resolves, tries each address under one deadline.
local csock = require "csock"
local H = require "helper"

describe("csock.connect", function()
  it("returns a connected stream socket to a 127.0.0.1 listener", function()
    local l, port = H.listener()
    local c = csock.connect("127.0.0.1", port, { timeout = 2 })
    assert.are.equal("ESTABLISHED", c:state())
    assert.are.same({ "127.0.0.1", port }, { c:getpeername() })
    local s = l:accept()
    c:write("hi\n")
    assert.are.equal("hi", s:read("l"))
    c:close(); s:close(); l:close()
  end)

  it("works without opts", function()
    local l, port = H.listener()
    local c = csock.connect("127.0.0.1", port)
    assert.are.same({ "127.0.0.1", port }, { c:getpeername() })
    c:close(); l:close()
  end)

  it("connects to an inet6 listener on ::1", function()
    local l, port = H.listener { family = "inet6" }
    local c = csock.connect("::1", port, { timeout = 2 })
    assert.are.same({ "::1", port }, { c:getpeername() })
    local prefix = "csock.socket: inet6 stream"
    assert.are.equal(prefix, tostring(c):sub(1, #prefix))
    c:close(); l:close()
  end)

  it("resolves 'localhost' and tries each address until one accepts", function()
    local l, port = H.listener()
    local c = csock.connect("localhost", port, { timeout = 2 })
    assert.are.same({ "127.0.0.1", port }, { c:getpeername() })
    c:close(); l:close()
  end)

  it("keeps opts.timeout as the socket's timeout", function()
    local l, port = H.listener()
    local c = csock.connect("127.0.0.1", port, { timeout = 0.2 })
    local s = l:accept()
    local t, r = H.timed(c.recv, c)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    c:close(); s:close(); l:close()
  end)

  it("returns nil, 'connection refused', ECONNREFUSED for a closed port", function()
    local port = H.free_port()
    assert.are.same({ n = 3, nil, "connection refused", csock.errno.ECONNREFUSED },
      table.pack(csock.connect("127.0.0.1", port, { timeout = 2 })))
  end)

  it("returns nil and a message for a name that does not resolve", function()
    local r = table.pack(csock.connect("no-such-host.invalid", 80, { timeout = 2 }))
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
  end)

  it("gives up with nil, 'timeout', ETIMEDOUT at opts.timeout when the backlog is full", function()
    local l, port = H.listener()
    l:close()
    l = csock.socket()
    assert(l:bind("127.0.0.1", port)); assert(l:listen(0))
    local held, result, elapsed = {}, nil, nil
    for i = 1, 10 do
      elapsed, result = H.timed(csock.connect, "127.0.0.1", port, { timeout = 0.3 })
      if result[1] == nil then break end
      held[i] = result[1]
    end
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, result)
    assert.is_true(elapsed >= 0.29 and elapsed < 3, "elapsed " .. elapsed)
    for _, c in pairs(held) do c:close() end
    l:close()
  end)

  it("connects to a unix path: csock.connect(path)", function()
    local path = H.tmpname()
    local l = csock.socket("unix")
    l:settimeout(H.TIMEOUT)
    assert(l:bind(path)); assert(l:listen())
    local c = csock.connect(path)
    assert.are.equal(path, c:getpeername())
    local s = l:accept()
    c:write("over unix\n")
    assert.are.equal("over unix", s:read("l"))
    c:close(); s:close(); l:close()
    os.remove(path)
  end)

  it("connects to a unix path with a timeout, 0 included (a unix connect needs no wait)", function()
    local path = H.tmpname()
    local l = csock.socket("unix")
    assert(l:bind(path)); assert(l:listen())
    for _, timeout in ipairs({ 0, 2 }) do
      local c = assert(csock.connect(path, { timeout = timeout }))
      assert.are.equal(path, c:getpeername())
      c:close()
    end
    l:close()
    os.remove(path)
  end)

  it("returns nil, 'no such file or directory', ENOENT for a missing unix path", function()
    assert.are.same({ n = 3, nil, "no such file or directory", csock.errno.ENOENT },
      table.pack(csock.connect(H.tmpname())))
  end)

  it("closes the socket of a failed attempt at once (no fd left, no GC needed)", function()
    local port = H.free_port()
    collectgarbage(); collectgarbage()
    collectgarbage("stop")
    local before = H.count_fds()
    for _ = 1, 10 do
      local c = csock.connect("127.0.0.1", port, { timeout = 1 })
      if c then c:close() end -- another process took the port meanwhile
    end
    local after = H.count_fds()
    collectgarbage("restart")
    assert.are.equal(before, after)
  end)
end)
