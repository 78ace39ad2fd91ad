-- Output inside tasks: small writes are queued in the socket and sent once
-- per turn of the loop (or on flush, close, or a full buffer); writers wait
-- for the kernel (backpressure) and the queue never grows past 64 KiB.
local csock = require "csock"
local H = require "helper"

local MiB = 1048576
local EPIPE, ECONNRESET = csock.errno.EPIPE, csock.errno.ECONNRESET

local drain = H.drain

local function numbered_lines(n)
  local t = {}
  for i = 1, n do t[i] = ("%05d\n"):format(i) end
  return t
end

describe("output in a task", function()
  it("queues many small writes and sends them together at the next turn of the loop", function()
    local c, s = H.tcp_pair()
    local lines = numbered_lines(1000)
    local r = {}
    csock.run(function()
      for _, line in ipairs(lines) do assert.are.equal(c, c:write(line)) end
      s:settimeout(0)
      r.before = table.pack(s:recv()) -- nothing sent yet
      csock.sleep(0)                   -- one turn: one send of all 6000 bytes
      s:settimeout(H.TIMEOUT)
      r.first = s:recv(65536)
      s:settimeout(0)
      r.rest = table.pack(s:recv())
    end)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r.before)
    assert.are.equal(table.concat(lines), r.first)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r.rest)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("keeps the order of small and large writes mixed", function()
    local c, s = H.tcp_pair()
    local big = H.pattern(3 * MiB + 17, 3)
    local expected = {}
    local got
    csock.run(function()
      local reader = csock.spawn(function() return drain(s) end)
      for i = 1, 5 do
        local small = ("<%d>"):format(i)
        c:write(small)
        c:write(big)
        expected[#expected + 1] = small .. big
      end
      c:write("end")
      expected[#expected + 1] = "end"
      c:close()
      got = reader:join()
    end)
    local want = table.concat(expected)
    assert.are.equal(#want, #got)
    assert.is_nil(H.first_diff(got, want))
    s:close()
    H.nothing_left()
  end)

  it("sends a large write at once, uncopied, before the loop's turn", function()
    local c, s = H.tcp_pair()
    local big = H.pattern(40000, 7)
    local r = {}
    csock.run(function()
      r.ret = c:write(big)
      s:settimeout(H.TIMEOUT)
      local parts, n = {}, 0
      while n < #big do -- no turn of the loop in between: it was sent by write itself
        local d = assert(s:recv())
        parts[#parts + 1] = d
        n = n + #d
      end
      r.got = table.concat(parts)
    end)
    assert.are.equal(c, r.ret)
    assert.are.equal(big, r.got)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("queues what the kernel cannot take of a large write yet, in order with later writes", function()
    -- A small send buffer (a unix pair: no TCP window to slow it down): a
    -- 40 KB write is taken in part, its rest queued (it fits the 64 KiB
    -- queue); a 300 KB write waits for room instead.
    local c, s = H.unix_pair()
    assert(c:setoption("sndbuf", 4096))
    local mid, big = H.pattern(40000, 8), H.pattern(300000, 9)
    local got
    csock.run(function()
      local reader = csock.spawn(function()
        csock.sleep(0.05) -- the writer first fills every buffer
        s:settimeout(H.TIMEOUT)
        return drain(s)
      end)
      assert.are.equal(c, c:write(mid))
      assert.are.equal(c, c:write("<after mid>"))
      assert.are.equal(c, c:write(big))
      assert.are.equal(c, c:write("<end>"))
      c:close()
      got = reader:join()
    end)
    local want = mid .. "<after mid>" .. big .. "<end>"
    assert.are.equal(#want, #got)
    assert.is_nil(H.first_diff(got, want))
    s:close()
    H.nothing_left()
  end)

  it("a large write to a reset connection returns nil, message, errno, and so does the next", function()
    local c, s = H.tcp_pair()
    assert(s:setoption("linger", 0))
    s:close() -- the peer resets
    local r = {}
    csock.run(function()
      csock.sleep(0.05)
      local big = H.pattern(40000, 10)
      r[1] = table.pack(c:write(big))
      if r[1][1] then r[1] = table.pack(c:write(big)) end -- the first may land before the RST is seen
      r[2] = table.pack(c:write("more"))
    end)
    assert.is_nil(r[1][1])
    assert.is_true(r[1][3] == EPIPE or r[1][3] == ECONNRESET, tostring(r[1][2]))
    assert.is_nil(r[2][1])
    c:close()
    H.nothing_left()
  end)

  it("flush() sends the queued output at once and returns the socket", function()
    local c, s = H.tcp_pair()
    local r = {}
    csock.run(function()
      c:write("queued ", "then ")
      r.flush = c:flush()
      s:settimeout(H.TIMEOUT)
      r.got = s:recv() -- no turn of the loop in between
      r.empty = c:flush()
      csock.sleep(0) -- a real wait, see H.settle in helper.lua
    end)
    assert.are.equal(c, r.flush)
    assert.are.equal("queued then ", r.got)
    assert.are.equal(c, r.empty)
    c:close(); s:close()
    H.nothing_left()
  end)

  it("close() right after writes delivers them", function()
    local c, s = H.tcp_pair()
    local lines = numbered_lines(2000)
    csock.run(function()
      for _, line in ipairs(lines) do c:write(line) end
      c:close()
      csock.sleep(0) -- a real wait, see H.settle in helper.lua
    end)
    assert.are.equal(table.concat(lines), drain(s))
    s:close()
    H.nothing_left()
  end)

  it("close() delivers queued writes even when the kernel buffer is full", function()
    -- A reader in a child starts reading 0.3 s after the writer has filled
    -- every buffer; small writes queued then must still arrive before EOF.
    local l, port = H.listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local c = csock.socket()
      c:settimeout(10)
      assert(c:connect("127.0.0.1", tonumber(arg[1])))
      print("connected")
      csock.sleep(0.3)
      local n, tail = 0, ""
      while true do
        local d = c:recv()
        if not d then break end
        n = n + #d
        tail = (tail .. d):sub(-32)
      end
      print(n, tail)
    ]], port)
    local conn = assert(l:accept())
    conn:settimeout(H.TIMEOUT)
    assert.are.equal("connected", peer:line())
    -- fill the socket buffers: send until the kernel takes no more
    conn:settimeout(0)
    local chunk, filled = string.rep("b", 65536), 0
    while true do
      local n = conn:send(chunk)
      if not n then break end
      filled = filled + n
    end
    conn:settimeout(H.TIMEOUT)
    local r = {}
    csock.run(function()
      for i = 1, 100 do r[i] = conn:write(("%03d"):format(i)) end -- 300 bytes, queued
      r.close = conn:close()
      csock.sleep(0) -- a real wait, see H.settle in helper.lua
    end)
    l:close()
    local out, code = peer:finish()
    local tail = ""
    for i = 90, 100 do tail = tail .. ("%03d"):format(i) end
    for i = 1, 100 do assert.are.equal(conn, r[i]) end
    assert.are.equal(true, r.close)
    assert.is_true(filled > 0)
    assert.are.equal((filled + 300) .. "\t" .. tail:sub(-32) .. "\n", out)
    assert.are.equal(0, code)
    H.nothing_left()
  end)

  it("returns a failure of a send the loop made later from the next write, and every write and flush after", function()
    local c, s = H.tcp_pair()
    s:close() -- the peer is gone: a send gets a reset, later ones fail
    local r = { ok = 0 }
    csock.run(function()
      for _ = 1, 20 do
        local res = table.pack(c:write("data"))
        if res[1] ~= c then
          r.failed = res
          break
        end
        r.ok = r.ok + 1
        csock.sleep(0.02)
      end
      -- and once more through flush: queue, let the loop's send fail, flush
      r.again = table.pack(c:write("more"))
      csock.sleep(0.02)
      csock.sleep(0.02)
      r.flush = table.pack(c:flush())
    end)
    assert.is_true(r.ok >= 1, "the first write already failed")
    assert.is_truthy(r.failed, "no write failed")
    assert.are.equal(3, r.failed.n)
    assert.is_nil(r.failed[1])
    assert.are.equal("closed", r.failed[2])
    assert.is_true(r.failed[3] == EPIPE or r.failed[3] == ECONNRESET, "errno " .. tostring(r.failed[3]))
    -- the failure sticks, as the contract says of a reset connection
    assert.are.same({ n = 3, nil, "closed", r.failed[3] }, r.again)
    assert.are.equal(3, r.flush.n)
    assert.is_nil(r.flush[1])
    assert.are.equal("closed", r.flush[2])
    assert.is_true(r.flush[3] == EPIPE or r.flush[3] == ECONNRESET, "errno " .. tostring(r.flush[3]))
    c:close()
    H.nothing_left()
  end)

  it("makes a writer wait when the peer does not read, with at most 64 KiB queued", function()
    local c, s = H.tcp_pair()
    -- fixed, small kernel buffers (no autotuning): what was written while the
    -- peer did not read is bounded by them plus the 64 KiB queue
    assert(c:setoption("sndbuf", 65536))
    assert(s:setoption("rcvbuf", 65536))
    local sndbuf, rcvbuf = c:getoption("sndbuf"), s:getoption("rcvbuf")
    local written, status, got = 0, nil, nil
    csock.run(function()
      local writer = csock.spawn(function()
        local chunk = string.rep("k", 1000)
        for _ = 1, 20000 do -- 20 MB in 1000-byte writes
          assert(c:write(chunk))
          written = written + #chunk
        end
        c:close()
      end)
      csock.sleep(0.3)
      status = writer:status()
      local stuck_at = written
      got = { stuck_at = stuck_at }
      local reader = csock.spawn(function() return #drain(s) end)
      got.total = reader:join()
    end)
    assert.are.equal("waiting", status)
    local bound = sndbuf + rcvbuf + 65536 + 65536
    assert.is_true(got.stuck_at < bound,
      ("written %d while the peer did not read (bound %d)"):format(got.stuck_at, bound))
    assert.are.equal(20000 * 1000, got.total)
    assert.are.equal(20000 * 1000, written)
    s:close()
    H.nothing_left()
  end)

  it("a 64 MiB write to a slow reader arrives intact, lets other tasks run, and keeps memory bounded", function()
    local SIZE = 64 * MiB
    local l, port = H.listener()
    -- the reader takes 64 KiB, then sleeps 10 ms: about 11 s for 64 MiB
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 15)
      local parts, n = {}, 0
      while true do
        local d, err = c:read(65536)
        if not d then
          if err ~= "closed" then print("read error", err) end
          break
        end
        parts[#parts + 1] = d
        n = n + #d
        csock.sleep(0.01)
      end
      print(n, H.first_diff(table.concat(parts), H.bulk(tonumber(arg[2]))) or "same")
    ]], port, SIZE)
    local conn = assert(l:accept())
    conn:settimeout(30)
    local data = H.bulk(SIZE)
    collectgarbage("collect")
    collectgarbage("collect")
    local base = H.rss_kib()
    local peak = base
    local r = {}
    csock.run(function()
      local writing = true
      local sampler = csock.spawn(function()
        local ticks = 0
        while writing do
          local rss = H.rss_kib()
          if rss > peak then peak = rss end
          ticks = ticks + 1
          csock.sleep(0.02)
        end
        return ticks
      end)
      local t0 = csock.now()
      r.write = table.pack(conn:write(data))
      r.took = csock.now() - t0
      writing = false
      r.ticks = sampler:join()
      r.close = conn:close()
    end)
    l:close()
    local out, code = peer:finish()
    assert.are.same({ n = 1, conn }, r.write)
    assert.are.equal(true, r.close)
    assert.are.equal(SIZE .. "\tsame\n", out)
    assert.are.equal(0, code)
    local growth = peak - base
    assert.is_true(growth < 40 * 1024, ("RSS grew by %d KiB during the write"):format(growth))
    -- the write returned only once the reader had taken most of it (1024 x 10 ms)
    assert.is_true(r.took > 5, "write returned after " .. r.took .. " s")
    assert.is_true(r.ticks > 100, "other tasks ran " .. r.ticks .. " times during the write")
    H.nothing_left()
  end)
end)
