-- Faults: running out of descriptors (accept at EMFILE under ulimit -n 64),
-- and 100,000 connect/close cycles that must not leak descriptors or memory.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local CLK_TCK = tonumber((function()
  local p = io.popen("getconf CLK_TCK")
  local v = p:read("l")
  p:close()
  return v
end)()) or 100

-- utime + stime of a process, in seconds.
local function cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("a")
  f:close()
  local fields = {}
  for w in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is field 3 (state): utime is field 14, stime field 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

describe("accept at EMFILE", function()
  it("a server with ulimit -n 64 stays cheap while saturated, keeps its listener and serves again", function()
    local peer = H.spawn_peer_with("ulimit -n 64;", [[
      local csock = require "csock"
      local f = io.open("/proc/self/stat"); local pid = f:read("n"); f:close()
      local server
      server = assert(csock.listen("127.0.0.1", 0, function(conn)
        for line in conn:lines() do
          if line == "quit" then server:close() return end
          conn:write(line, "\n")
        end
      end))
      print("ready " .. math.tointeger(pid) .. " " .. select(2, server:getsockname()))
      csock.run()
      print("exit")
    ]])
    local pid, port = (peer:line() or ""):match("^ready (%d+) (%d+)$")
    assert.is_truthy(pid, "the server did not start")
    port = tonumber(port)
    local conns = {}
    for i = 1, 100 do
      local c = csock.socket()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      assert.are.equal(3, c:send("hi\n"))
      conns[i] = c
    end
    H.sleep(1)
    -- the connections it could accept have their answer; the rest wait in the backlog
    local served, waiting = {}, {}
    local readable = csock.select(conns, {}, 0)
    local is_served = {}
    for _, c in ipairs(readable) do is_served[c] = true end
    for _, c in ipairs(conns) do
      if is_served[c] then served[#served + 1] = c else waiting[#waiting + 1] = c end
    end
    assert.is_true(#served >= 20 and #waiting >= 10,
      ("served %d, waiting %d: the server never ran out of descriptors?"):format(#served, #waiting))
    for _, c in ipairs(served) do assert.are.equal("hi", c:read("l")) end
    -- saturated: accept fails with EMFILE, and must not spin
    local cpu0 = cpu_seconds(pid)
    H.sleep(2)
    local used = cpu_seconds(pid) - cpu0
    assert.is_true(used < 0.5, ("the saturated server used %.2f s of CPU in 2 s"):format(used))
    -- free its descriptors: the connections that waited are served in turn
    for _, c in ipairs(served) do c:close() end
    for i, c in ipairs(waiting) do
      assert.are.same({ n = 1, "hi" }, table.pack(c:read("l")), "waiting connection " .. i)
    end
    -- and the listener is still open: a new connection is served
    local new = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
    new:write("new\n")
    assert.are.equal("new", new:read("l"))
    new:write("quit\n")
    new:close()
    for _, c in ipairs(waiting) do c:close() end
    assert.are.same({ "exit\n", 0 }, { peer:finish() })
  end)
end)

describe("connect/close cycles", function()
  local N = H.UNDER_VALGRIND and 2000 or H.UNDER_ASAN and 20000 or 100000

  it(N .. " cycles (half blocking, half in tasks through csock.listen): no descriptor or memory growth", function()
    local l, port = H.listener { backlog = 511 }
    collectgarbage(); collectgarbage()
    -- Lua 5.4.4 paces its collector badly after a huge string was freed (an
    -- earlier test's 64 MiB): it would let garbage grow by as much before
    -- the next cycle. One explicit step sets the pace right again.
    collectgarbage("step", 0)
    local fds0, lua0, rss0 = H.count_fds(), collectgarbage("count"), H.rss_kib()
    for i = 1, N // 2 do
      local c = csock.socket()
      c:settimeout(5)
      local ok, err = c:connect("127.0.0.1", port)
      if not ok then error("blocking cycle " .. i .. ": " .. tostring(err)) end
      local s = assert(l:accept())
      s:close()
      c:close()
    end
    l:close()
    local accepted = 0
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        accepted = accepted + 1
      end))
      local _, p = server:getsockname()
      for i = 1, N - N // 2 do
        local c, err = csock.connect("127.0.0.1", p, { timeout = 5 })
        if not c then error("task cycle " .. i .. ": " .. tostring(err)) end
        c:close()
      end
      while accepted < N - N // 2 do csock.sleep(0.01) end
      server:close()
    end)
    H.nothing_left()
    collectgarbage(); collectgarbage()
    local fds, lua, rss = H.count_fds() - fds0, collectgarbage("count") - lua0, H.rss_kib() - rss0
    assert.is_true(fds <= 0, fds .. " more sockets open") -- (fewer: an earlier test's garbage went)
    assert.is_true(lua < 256, "Lua memory grew by " .. lua .. " KiB")
    if not H.UNDER_ASAN then -- ASan's quarantine holds freed memory on purpose
      assert.is_true(rss < 8 * 1024, "RSS grew by " .. rss .. " KiB")
    end
  end)
end)
