-- Faults: EINTR on every blocking call, and signals and descriptors (csock
-- changes no signal's disposition or mask; everything it opens is
-- close-on-exec).
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

describe("EINTR", function()
  -- Side A runs with spec/tools/eintr.c preloaded: SIGALRM every 1 ms, no
  -- SA_RESTART, so every blocking syscall is interrupted again and again.
  -- Side B (a plain child) makes A's data arrive late, so that A really
  -- blocks in each call.
  -- A does not load spec/helper.lua: its io.popen("pwd") is Lua's own io,
  -- which does not retry on EINTR. These are H.pattern and H.bulk.
  local SIDE_A = [[
    local csock = require "csock"
    local H = {}
    function H.pattern(n, seed)
      local t, x, chunk = {}, seed or 1, {}
      for i = 1, n do
        x = (x * 1103515245 + 12345) % 2147483648
        chunk[#chunk + 1] = (x >> 16) & 255
        if #chunk == 4096 or i == n then
          t[#t + 1] = string.char(table.unpack(chunk))
          chunk = {}
        end
      end
      return table.concat(t)
    end
    function H.bulk(size)
      local base, blocks = H.pattern(65536, 7), {}
      for i = 0, size // 65536 - 1 do
        local r = i % 4096 + 9
        blocks[#blocks + 1] = string.format("%08x", i) .. (base:sub(r) .. base:sub(9, r - 1))
      end
      return table.concat(blocks)
    end
    local l = csock.socket()
    l:settimeout(10)
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    print("port " .. select(2, l:getsockname()))
    local function check(name, ok, ...)
      if ok then print("ok " .. name)
      else print("FAIL " .. name, ...) end
    end
    local BULK, PAT = H.bulk(8 * 1048576), H.pattern(200000, 3)
    local function round(mode)
      local c = l:accept()
      check(mode .. " accept", c ~= nil)
      c:settimeout(10)
      -- waitfd first: once csock itself waits on c, the loop watches its fd
      local ok, e2 = csock.waitfd(c:fileno(), "r", 10)
      check(mode .. " waitfd", ok == true, ok, e2)
      local d, err = c:recv(10)
      check(mode .. " recv", d == "hello", d, err)
      d, err = c:read("l")
      check(mode .. " read line", d == "world", d, err)
      d, err = c:read(200000)
      check(mode .. " read count", d == PAT, d and #d, err)
      local r, _, e = csock.select({ c }, {}, 10)
      check(mode .. " select", r[1] == c, #r, e)
      check(mode .. " recv after select", c:recv() == "x")
      local t0 = csock.now()
      csock.sleep(0.3)
      local dt = csock.now() - t0
      check(mode .. " sleep", dt >= 0.3 and dt < 1, dt)
      check(mode .. " write", c:write(BULK) == c and c:flush() == c)
      d, err = c:read("l")
      check(mode .. " peer got the write", d == "got 8388608 same", d, err)
      local bport = tonumber((c:read("l")))
      local k = csock.socket()
      k:settimeout(10)
      local okc, errc = k:connect("127.0.0.1", bport) -- B's backlog is full: a SYN retry
      check(mode .. " connect", okc == true, errc)
      k:write("k\n")
      d, err = k:read("l")
      check(mode .. " connected peer answers", d == "K", d, err)
      k:close()
      local a, erra = csock.getaddrinfo("localhost", 80)
      check(mode .. " getaddrinfo", a and a[1].host == "127.0.0.1", erra)
      d, err = c:read("a")
      check(mode .. " read all", d == "bye", d, err)
      c:close()
    end
    round("blocking")
    csock.run(function()
      local ticks = 0
      local ticker = csock.timer(0.01, function() ticks = ticks + 1 end, 0.01)
      round("task")
      ticker:cancel()
      check("task timers ran meanwhile", ticks > 20, ticks)
    end)
    l:close()
    print("done")
  ]]

  local SIDE_B = [[
    local csock = require "csock"
    local H = require "helper"
    local port = tonumber(arg[1])
    local BULK, PAT = H.bulk(8 * 1048576), H.pattern(200000, 3)
    local P = 0.15
    for _ = 1, 2 do
      csock.sleep(P)
      local c = assert(csock.connect("127.0.0.1", port, { timeout = 10 }))
      csock.sleep(P); assert(c:send("hello"))
      csock.sleep(P); assert(c:send("wor"))
      csock.sleep(P); assert(c:send("ld\n"))
      for i = 0, 3 do
        csock.sleep(0.1)
        assert(c:write(PAT:sub(i * 50000 + 1, (i + 1) * 50000)))
      end
      csock.sleep(P); assert(c:send("x"))
      csock.sleep(0.5) -- A writes 8 MiB after 0.3 s: it blocks until B reads
      local got = c:read(8 * 1048576)
      c:write("got ", got and #got or 0, " ", got == BULK and "same" or "different", "\n")
      -- a listener with a full backlog: A's connect waits for its SYN retry
      local l = csock.socket()
      assert(l:bind("127.0.0.1", 0)); assert(l:listen(0))
      local _, lport = l:getsockname()
      local fillers = {}
      for _ = 1, 10 do
        local f = csock.socket()
        f:settimeout(0.2)
        if f:connect("127.0.0.1", lport) then fillers[#fillers + 1] = f
        else f:close() break end
      end
      c:write(lport, "\n")
      csock.sleep(0.3)
      l:settimeout(5)
      for _ = 1, #fillers do assert(l:accept()):close() end
      local k = assert(l:accept())
      k:settimeout(5)
      k:write(k:read("l") == "k" and "K\n" or "?\n")
      k:close(); l:close()
      for _, f in ipairs(fillers) do f:close() end
      csock.sleep(P); c:write("bye")
      csock.sleep(P); c:close()
    end
    print("B done")
  ]]

  it("every blocking call (accept, recv, read, select, waitfd, sleep, write, connect, getaddrinfo), blocking and in tasks, gives its normal result", function()
    local so = H.build_shim("eintr")
    finally(function() os.remove(so) end)
    local a = H.spawn_peer_with(H.preload(so), SIDE_A)
    local first = a:line()
    local port = (first or ""):match("^port (%d+)$")
    assert.is_truthy(port, "side A did not start: " .. tostring(first))
    local b = H.spawn_peer(SIDE_B, port)
    local out_a, code_a = a:finish()
    local out_b, code_b = b:finish()
    assert.are.same({ "B done\n", 0 }, { out_b, code_b })
    local expected = {}
    for _, mode in ipairs({ "blocking", "task" }) do
      for _, what in ipairs({ "accept", "waitfd", "recv", "read line", "read count", "select", "recv after select",
                              "sleep", "write", "peer got the write",
                              "connect", "connected peer answers", "getaddrinfo", "read all" }) do
        expected[#expected + 1] = "ok " .. mode .. " " .. what
      end
    end
    expected[#expected + 1] = "ok task timers ran meanwhile"
    expected[#expected + 1] = "done"
    local signals, waits = out_a:match("eintr: (%d+) signals, (%d+) interrupted waits\n")
    assert.are.equal(table.concat(expected, "\n") .. "\n",
      (out_a:gsub("eintr: %d+ signals, %d+ interrupted waits\n", "")))
    assert.are.equal(0, code_a)
    -- the signals did arrive, and did interrupt csock's waits
    assert.is_true(tonumber(signals) > 1000, "signals: " .. tostring(signals))
    assert.is_true(tonumber(waits) > 100, "interrupted waits: " .. tostring(waits))
  end)
end)

describe("signals and descriptors", function()
  it("loading csock, running tasks and a lookup on a helper thread change no signal's disposition or mask; the helper thread blocks them all", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with("CSOCK_SLOWDNS_SECONDS=1 " .. H.preload(so), [[
      local pid = io.open("/proc/self/stat"):read("n")
      local function sigs(path)
        local t = {}
        for line in io.lines(path) do
          local k, v = line:match("^(Sig%a%a%a):%s+(%x+)")
          -- signals 1..31 (glibc itself takes 32 and 33 for its threads)
          if k then t[#t + 1] = ("%s=%08x"):format(k, tonumber(v, 16) & 0x7fffffff) end
        end
        return table.concat(t, " ")
      end
      local before = sigs("/proc/self/status")
      local csock = require "csock"
      local after_require = sigs("/proc/self/status")
      local helper
      csock.run(function()
        local lookup = csock.spawn(function() return csock.getaddrinfo("x.slow.invalid", 80) end)
        local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
        local c = csock.connect("127.0.0.1", select(2, l:getsockname()), { timeout = 1 })
        local a = l:accept()
        csock.spawn(function() csock.sleep(0.1) c:write("x") end)
        a:read(1)
        csock.sleep(0.2) -- the helper thread is in its 1-second lookup now
        local p = io.popen("ls /proc/" .. math.tointeger(pid) .. "/task")
        for tid in p:lines() do
          if tonumber(tid) ~= pid then
            for line in io.lines("/proc/" .. math.tointeger(pid) .. "/task/" .. tid .. "/status") do
              helper = helper or line:match("^SigBlk:%s+(%x+)")
            end
          end
        end
        p:close()
        lookup:join()
        c:close(); a:close(); l:close()
      end)
      local after_loop = sigs("/proc/self/status")
      print(before == after_require and "same after require" or ("changed: " .. before .. " / " .. after_require))
      print(before == after_loop and "same after the loop" or ("changed: " .. before .. " / " .. after_loop))
      print("helper " .. tostring(helper))
    ]]):finish()
    assert.are.equal(0, code)
    local helper = out:match("helper (%x+)\n$")
    assert.are.equal("same after require\nsame after the loop\nhelper " .. tostring(helper) .. "\n", out)
    assert.is_truthy(helper, "no helper thread was seen")
    local mask = tonumber(helper, 16)
    for _, sig in ipairs({ 1, 2, 3, 10, 12, 13, 14, 15, 17, 28 }) do -- HUP INT QUIT USR1 USR2 PIPE ALRM TERM CHLD WINCH
      assert.are_not.equal(0, mask & (1 << (sig - 1)), "signal " .. sig .. " is not blocked in the helper thread")
    end
  end)

  it("every descriptor csock makes is close-on-exec (waitfd's too): a program started meanwhile inherits none", function()
    local out, code = H.spawn_peer([[
      local csock = require "csock"
      local l = csock.socket(); assert(l:bind("127.0.0.1", 0)); assert(l:listen())
      local c = csock.socket(); c:settimeout(1); assert(c:connect("127.0.0.1", select(2, l:getsockname())))
      local a = assert(l:accept())
      local u = csock.socket("unix", "dgram")
      local path = os.tmpname() .. ".sock"
      local ul = csock.socket("unix"); assert(ul:bind(path)); assert(ul:listen())
      csock.signal("USR2", function() end) -- a signalfd
      local listing
      csock.run(function()
        local sel = csock.spawn(function() return csock.select({ a }, {}, 2) end) -- its own epoll set
        local rd = csock.spawn(function() return c:read(1) end)                 -- c in the loop's poller
        local gai = csock.spawn(function() return csock.getaddrinfo("localhost", 80) end) -- eventfd
        csock.sleep(0.02)
        -- waitfd on the fd of a socket the loop already watches (c): another
        -- descriptor for the same socket
        local wf = csock.spawn(function() return csock.waitfd(c:fileno(), "r", 2) end)
        csock.sleep(0.03)
        local p = io.popen("ls -l /proc/self/fd")
        listing = p:read("a")
        p:close()
        c:send("x"); a:send("y")
        sel:join(); rd:join(); gai:join(); wf:join()
      end)
      csock.signal("USR2", nil)
      os.remove(path)
      local inherited = {}
      for target in listing:gmatch("-> ([^\n]+)") do
        if target:find("socket:", 1, true) or target:find("anon_inode", 1, true) then
          inherited[#inherited + 1] = target
        end
      end
      print(#inherited == 0 and "none inherited" or table.concat(inherited, " "))
    ]]):finish()
    assert.are.same({ "none inherited\n", 0 }, { out, code })
  end)
end)
