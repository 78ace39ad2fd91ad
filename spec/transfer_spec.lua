-- Bulk transfer with a concurrent peer process, write/flush return values,
-- and writers blocked by a peer that never reads.
local csock = require "csock"
local H = require "helper"

local MiB = 1048576
local SIZE = 64 * MiB

-- the listener waits for a child: as long as the child may run
local function listener()
  return H.listener { timeout = H.PEER_DEADLINE }
end

describe("64 MiB transfer", function()
  it("write() of 64 MiB reaches a concurrent reader (recv loop in a child) intact", function()
    local l, port = listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 15)
      local parts, n = {}, 0
      while true do
        local d, err = c:recv()
        if not d then
          if err ~= "closed" then print("recv error", err) end
          break
        end
        parts[#parts + 1] = d
        n = n + #d
      end
      print(n, H.first_diff(table.concat(parts), H.bulk(tonumber(arg[2]))) or "same")
    ]], port, SIZE)
    local s = l:accept()
    assert.is_truthy(s, "the peer did not connect")
    s:settimeout(H.PEER_DEADLINE)
    local data = H.bulk(SIZE)
    assert.are.equal(s, s:write(data))
    assert.are.equal(s, s:flush())
    s:close(); l:close()
    local out, code = peer:finish()
    assert.are.equal(SIZE .. "\tsame\n", out)
    assert.are.equal(0, code)
  end)

  it("read('a') collects 64 MiB written by a child until it closes", function()
    local l, port = listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 15)
      assert(c:write(H.bulk(tonumber(arg[2]))) == c)
      c:close()
      print("done")
    ]], port, SIZE)
    local s = l:accept()
    assert.is_truthy(s, "the peer did not connect")
    s:settimeout(H.PEER_DEADLINE)
    local got = s:read("a")
    assert.are.equal(SIZE, #got)
    assert.is_nil(H.first_diff(got, H.bulk(SIZE)))
    assert.are.equal("", s:read("a"))
    s:close(); l:close()
    assert.are.same({ "done\n", 0 }, { peer:finish() })
  end)

  it("read(n) returns exactly n bytes in 64 KiB blocks across 64 MiB, then nil, 'closed'", function()
    local l, port = listener()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local H = require "helper"
      local c = H.connect_tcp(arg[1], 15)
      assert(c:write(H.bulk(tonumber(arg[2]))) == c)
      c:close()
      print("done")
    ]], port, SIZE)
    local s = l:accept()
    assert.is_truthy(s, "the peer did not connect")
    s:settimeout(H.PEER_DEADLINE)
    local want = H.bulk(SIZE)
    local bad
    for i = 0, SIZE // 65536 - 1 do
      local block = s:read(65536)
      if block ~= want:sub(i * 65536 + 1, (i + 1) * 65536) then bad = i break end
    end
    assert.is_nil(bad, "block " .. tostring(bad) .. " differs")
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:read(1)))
    s:close(); l:close()
    assert.are.same({ "done\n", 0 }, { peer:finish() })
  end)
end)

describe("write", function()
  it("returns the socket and sends strings and numbers in order", function()
    local c, s = H.tcp_pair()
    assert.are.equal(c, c:write("a", 1, 2.5, "b", -3))
    assert.are.equal("a12.5b-3", s:recv())
    c:close(); s:close()
  end)

  it("with no argument returns the socket and sends nothing", function()
    local c, s = H.tcp_pair()
    assert.are.equal(c, c:write())
    assert.are.equal(c, c:write(""))
    assert.are.equal(c, c:write("x"))
    assert.are.equal("x", s:recv())
    c:close(); s:close()
  end)

  it("flush returns the socket", function()
    local c, s = H.tcp_pair()
    assert.are.equal(c, c:flush())
    c:close(); s:close()
  end)

  it("works on a unix stream pair", function()
    local c, s = H.unix_pair()
    assert.are.equal(c, c:write("line 1\n", "line 2\n"))
    assert.are.equal("line 1", s:read("l"))
    assert.are.equal("line 2\n", s:read("L"))
    c:close(); s:close()
  end)

  it("to a peer that never reads returns nil, 'timeout', ETIMEDOUT after the timeout", function()
    local c, s = H.tcp_pair()
    c:settimeout(0.3)
    local big = string.rep("x", SIZE)
    local t, r = H.timed(c.write, c, big)
    assert.are.equal(3, r.n)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
    assert.is_true(t >= 0.29 and t < 3, "elapsed " .. t)
    c:close(); s:close()
  end)
end)

describe("send", function()
  it("with settimeout(0) returns nil, 'timeout', ETIMEDOUT at once when the buffer is full", function()
    local c, s = H.tcp_pair()
    c:settimeout(0)
    local chunk = string.rep("y", 65536)
    local r, total
    local t = H.timed(function()
      total = 0
      for _ = 1, 100000 do
        r = table.pack(c:send(chunk))
        if r[1] == nil then break end
        total = total + r[1]
      end
    end)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
    assert.is_true(total > 0)
    assert.is_true(t < 2, "elapsed " .. t)
    c:close(); s:close()
  end)

  it("with a timeout returns nil, 'timeout' after that long when the buffer stays full", function()
    local c, s = H.tcp_pair()
    c:settimeout(0)
    local chunk = string.rep("y", 65536)
    for _ = 1, 100000 do
      if not c:send(chunk) then break end
    end
    c:settimeout(0.2)
    local t, r = H.timed(c.send, c, chunk)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
    assert.is_true(t >= 0.19 and t < 2, "elapsed " .. t)
    c:close(); s:close()
  end)
end)
