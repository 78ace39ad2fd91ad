-- sock:copyto(dst [, n]): echo and relay in C; counts, order with buffered
-- input and queued output, backpressure, timeouts, failures, bad arguments.
local csock = require "csock"
local H = require "helper"

local MiB = 1048576
local ETIMEDOUT = csock.errno.ETIMEDOUT

local drain = H.drain

describe("sock:copyto", function()
  it("echoes 8 MiB through csock.listen with conn:copyto(conn) and returns the count", function()
    local copied
    local server = assert(csock.listen("127.0.0.1", 0, function(conn)
      copied = conn:copyto(conn)
    end))
    local _, port = server:getsockname()
    local data = H.pattern(8 * MiB + 3, 1)
    local got
    csock.run(function()
      local c = assert(csock.connect("127.0.0.1", port, { timeout = H.TIMEOUT }))
      local reader = csock.spawn(drain, c)
      assert(c:write(data))
      assert(c:shutdown("w"))
      got = reader:join()
      c:close()
      server:close()
    end)
    assert.are.equal(#data, #got)
    assert.is_nil(H.first_diff(got, data))
    assert.are.equal(#data, copied)
    H.nothing_left()
  end)

  it("relays between two connections outside tasks, blocking, until the end of the stream", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    local data = H.pattern(100000, 2)
    assert(a1:write(data))
    assert(a1:shutdown("w"))
    assert.are.equal(#data, a2:copyto(b1)) -- the kernel buffers hold it all
    b1:close()
    assert.are.equal(data, drain(b2))
    for _, s in ipairs({ a1, a2, b2 }) do s:close() end
  end)

  it("with n copies exactly n bytes and leaves the rest to read", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    assert(a1:write("0123456789tail"))
    assert.are.equal(10, a2:copyto(b1, 10))
    assert.are.equal("0123456789", b2:read(10))
    assert.are.equal("tail", a2:recv())
    assert.are.equal(0, a2:copyto(b1, 0))
    for _, s in ipairs({ a1, a2, b1, b2 }) do s:close() end
  end)

  it("returns fewer than n when the stream ends first", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    assert(a1:write("short"))
    a1:close()
    assert.are.equal(5, a2:copyto(b1, 1000))
    assert.are.equal("short", b2:read(5))
    for _, s in ipairs({ a2, b1, b2 }) do s:close() end
  end)

  it("sends the bytes read() buffered first, and output queued on dst before them", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    local r = {}
    csock.run(function()
      assert(a1:write("head\nbody-and-more"))
      a1:close()
      r.head = a2:read("l")     -- buffers the rest of what arrived
      b1:write("queued:")       -- waits in b1's output queue
      r.copied = a2:copyto(b1)
      b1:close()
      r.got = drain(b2)
    end)
    assert.are.same({ head = "head", copied = #"body-and-more", got = "queued:body-and-more" }, r)
    for _, s in ipairs({ a2, b2 }) do s:close() end
    H.nothing_left()
  end)

  it("keeps pace with a slow destination: all bytes, in order, other tasks run meanwhile", function()
    -- dst has a small send buffer and a reader that starts late and reads in
    -- small pieces: copyto must wait for room instead of buffering the stream.
    local a1, a2 = H.unix_pair()
    local b1, b2 = H.unix_pair()
    assert(b1:setoption("sndbuf", 4096))
    local data = H.pattern(3 * MiB + 1, 3)
    local got, copied, ticks = nil, nil, 0
    csock.run(function()
      local writer = csock.spawn(function()
        assert(a1:write(data))
        a1:close()
      end)
      local ticker = csock.spawn(function()
        while not copied do ticks = ticks + 1; csock.sleep(0.001) end
      end)
      local reader = csock.spawn(function()
        csock.sleep(0.05)
        local parts = {}
        while true do
          local d = b2:recv(1000)
          if not d then break end
          parts[#parts + 1] = d
        end
        return table.concat(parts)
      end)
      copied = a2:copyto(b1)
      b1:close()
      got = reader:join()
      writer:join(); ticker:join()
    end)
    assert.are.equal(#data, copied)
    assert.are.equal(#data, #got)
    assert.is_nil(H.first_diff(got, data))
    assert.is_true(ticks > 5, "other tasks did not run: " .. ticks)
    for _, s in ipairs({ a2, b2 }) do s:close() end
    H.nothing_left()
  end)

  it("times out when the source stays silent longer than its timeout, with the count so far", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    a2:settimeout(0.2)
    local r
    csock.run(function()
      local talker = csock.spawn(function()
        for i = 1, 5 do -- keeps the stream moving for longer than the timeout
          assert(a1:write("x"))
          csock.sleep(0.1)
        end
      end)
      r = table.pack(H.timed(a2.copyto, a2, b1))
      talker:join()
    end)
    local elapsed, results = r[1], r[2]
    assert.are.same({ n = 4, nil, "timeout", ETIMEDOUT, 5 }, results)
    assert.is_true(elapsed > 0.6, "elapsed " .. elapsed) -- each wait has its own deadline
    assert.are.equal("xxxxx", b2:read(5))
    for _, s in ipairs({ a1, a2, b1, b2 }) do s:close() end
    H.nothing_left()
  end)

  it("returns nil, message, errno and the count when the destination is reset", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    assert(b2:setoption("linger", 0))
    b2:close() -- resets b1's connection
    local r
    csock.run(function()
      csock.sleep(0.05)
      local feeder = csock.spawn(function()
        for _ = 1, 50 do
          if not a1:write(H.pattern(65536, 4)) then break end
          csock.sleep(0.001)
        end
        a1:close()
      end)
      r = table.pack(a2:copyto(b1))
      feeder:join()
    end)
    assert.is_nil(r[1])
    assert.is_true(r[3] == csock.errno.EPIPE or r[3] == csock.errno.ECONNRESET, tostring(r[2]))
    assert.are.equal("integer", math.type(r[4]))
    assert.is_nil(b1:write("x"), "the failure sticks to the destination")
    for _, s in ipairs({ a2, b1 }) do s:close() end
    H.nothing_left()
  end)

  it("returns nil, 'closed' and the count when another task closes the source", function()
    local a1, a2 = H.tcp_pair()
    local b1, b2 = H.tcp_pair()
    local r
    csock.run(function()
      csock.spawn(function()
        assert(a1:write("abc"))
        csock.sleep(0.05)
        a2:close()
      end)
      r = table.pack(a2:copyto(b1))
    end)
    assert.are.same({ n = 3, nil, "closed", 3 }, r)
    assert.are.equal("abc", b2:read(3))
    for _, s in ipairs({ a1, b1, b2 }) do s:close() end
    H.nothing_left()
  end)

  it("raises for datagram sockets, a negative n, and a closed destination", function()
    local a1, a2 = H.tcp_pair()
    local u = csock.socket("inet", "dgram")
    local closed = csock.socket()
    closed:close()
    assert.has_error(function() a2:copyto(u) end)
    assert.has_error(function() u:copyto(a2) end)
    assert.has_error(function() a2:copyto(a1, -1) end)
    assert.has_error(function() a2:copyto(a1, 1.5) end)
    assert.has_error(function() a2:copyto(closed) end, "attempt to use a closed socket")
    for _, s in ipairs({ a1, a2, u }) do s:close() end
  end)
end)
