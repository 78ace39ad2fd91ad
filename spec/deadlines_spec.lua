-- Every blocking call returns within its timeout, whatever state its socket
-- is in, on both backends (make test runs this file under each), inside and
-- outside tasks: first the states that once broke it, then random sequences
-- of calls with shutdowns and closes in between.
local csock = require "csock"
local H = require "helper"

local SLACK = 0.2 -- how far past its timeout a call may return

-- Runs fn(s) on a datagram socket of `family` that was shut down (`how`),
-- with timeout t, blocking and in a task: each call must say "timeout"
-- within t + SLACK, and not by spinning.
local function shut_dgram(family, how, t, fn)
  local s = assert(csock.socket(family, "dgram"))
  s:shutdown(how) -- an unconnected inet socket says ENOTCONN, and is shut down all the same
  assert(s:settimeout(t))
  local cpu0, t0 = os.clock(), H.now()
  local r = table.pack(fn(s))
  local cpu, elapsed = os.clock() - cpu0, H.now() - t0
  assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
  assert.is_true(elapsed >= t * 0.9 and elapsed < t + SLACK, "blocking: " .. elapsed)
  assert.is_true(cpu < 0.1 + t / 3, "blocking call used " .. cpu .. " s of CPU")
  cpu0, t0 = os.clock(), H.now()
  r = table.pack(csock.run(function() return fn(s) end))
  cpu, elapsed = os.clock() - cpu0, H.now() - t0
  assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
  assert.is_true(elapsed >= t * 0.9 and elapsed < t + SLACK, "in a task: " .. elapsed)
  assert.is_true(cpu < 0.1 + t / 3, "task used " .. cpu .. " s of CPU")
  s:close()
end

describe("a datagram socket after shutdown (readable for poll(2), EAGAIN for recv)", function()
  for _, family in ipairs({ "unix", "inet", "inet6" }) do
    for _, how in ipairs({ "rw", "r" }) do
      it(("%s, shutdown('%s'): recv, recvfrom, read and lines time out; no busy loop"):format(family, how), function()
        shut_dgram(family, how, 0.002, function(s) return s:recv() end)
        shut_dgram(family, how, 0.3, function(s) return s:recv(10) end)
        shut_dgram(family, how, 0.05, function(s) return s:recvfrom() end)
        shut_dgram(family, how, 0.05, function(s) return s:read("l") end)
        shut_dgram(family, how, 0.05, function(s) return s:lines()() end)
      end)
    end
  end

  it("settimeout(0): one look, then timeout at once", function()
    local s = assert(csock.socket("unix", "dgram"))
    s:shutdown()
    s:settimeout(0)
    local elapsed, r = H.timed(s.recv, s)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, r)
    assert.is_true(elapsed < SLACK, elapsed)
    s:close()
  end)
end)

describe("tasks sharing a socket keep their own deadlines", function()
  it("4 tasks accepting on one listener with timeout 0.5 s while a client connects every 0.2 s: no accept outlives its timeout", function()
    local l = H.listener({ timeout = 0.5 })
    local port = select(2, l:getsockname())
    local longest, accepted, timeouts = 0, 0, 0
    local T0 = H.now()
    local function acceptor()
      for _ = 1, 20 do
        local t0 = H.now()
        local c, err = l:accept()
        longest = math.max(longest, H.now() - t0)
        if c then
          accepted = accepted + 1
          c:close()
        else
          if err ~= "timeout" then return err end
          timeouts = timeouts + 1
          if H.now() > 2.5 + T0 then return end
        end
      end
    end
    csock.run(function()
      local tasks = {}
      for i = 1, 4 do tasks[i] = csock.spawn(acceptor) end
      for _ = 1, 8 do
        csock.sleep(0.2)
        local c = csock.connect("127.0.0.1", port, { timeout = 1 })
        if c then c:close() end
      end
      for _, t in ipairs(tasks) do
        local r = table.pack(t:join())
        if r.n > 0 then error("an acceptor returned " .. tostring(r[1]) .. " " .. tostring(r[2])) end
      end
    end)
    l:close()
    assert.are.equal(8, accepted)
    assert.is_true(timeouts >= 4, "timeouts " .. timeouts)
    assert.is_true(longest < 0.5 + SLACK, "an accept took " .. longest .. " s")
  end)
end)

-- A random program, run in a child process so that a crash or a call that
-- never returns shows as its exit status: sockets of every family and type
-- (connected pairs, listeners, fresh ones), each with a short timeout, and
-- `nops` calls picked at random, with odd arguments, shutdowns and closes
-- among them. With "tasks", four tasks share the sockets. Every call that
-- takes longer than its socket's timeout + SLACK prints SLOW.
local PROGRAM = [[
local csock = require "csock"
local H = require "helper"
local seed, mode, nops, slack = tonumber(arg[1]), arg[2], tonumber(arg[3]), tonumber(arg[4])
math.randomseed(seed)
local R = math.random
local socks = {}
local function add(s, t)
  if s then
    s:settimeout(t or (R(0, 3) == 0 and 0 or R(1, 30) / 1000))
    socks[#socks + 1] = s
  end
  return s
end
local function pairs_of(family)
  local ok, c, s = pcall(H.tcp_pair, family)
  if ok then add(c) add(s) end
end
local function udp_pair(family)
  local host = family == "inet6" and "::1" or "127.0.0.1"
  local a, b = csock.socket(family, "dgram"), csock.socket(family, "dgram")
  if not (a and b) then return end
  a:bind(host, 0) b:bind(host, 0)
  a:connect(b:getsockname()) b:connect(a:getsockname())
  add(a) add(b)
end
local listeners = {}
local function listener(family)
  local l
  if family == "unix" then
    l = csock.socket("unix")
    local path = H.tmpname()
    if not l:bind(path) then return end
    listeners[#listeners + 1] = { sock = l, path = path }
  else
    l = csock.socket(family)
    if not l:bind(family == "inet6" and "::1" or "127.0.0.1", 0) then return end
    listeners[#listeners + 1] = { sock = l, family = family, port = select(2, l:getsockname()) }
  end
  l:listen(4)
  add(l)
end
local function setup()
  for _, f in ipairs({ "inet", "inet6" }) do pairs_of(f) udp_pair(f) listener(f) end
  local c, s = H.unix_pair() add(c) add(s)
  listener("unix")
  for _, f in ipairs({ "inet", "inet6", "unix" }) do
    for _, ty in ipairs({ "stream", "dgram" }) do add(csock.socket(f, ty)) end
  end
end
local function pick() return socks[R(#socks)] end
local function more() -- new sockets, as others get closed
  local f = ({ "inet", "inet6", "unix" })[R(3)]
  if R(2) == 1 then
    if f == "unix" then local c, s = H.unix_pair() add(c) add(s) else pairs_of(f) end
  elseif f ~= "unix" then
    udp_pair(f)
  else
    add(csock.socket("unix", "dgram"))
  end
end
local function str(n) return ("x"):rep(n) end
local odd = { 0, 1, 7, 4096, 65536, 2^20, math.maxinteger, -1 }
-- Without a count, not into the source's own peer: that loop moves bytes for ever.
local function copyto(s)
  local d, n = pick(), R(0, 3) > 0 and R(0, 100000) or nil
  local peer, dst = table.concat({ s:getpeername() }, " "), table.concat({ d:getsockname() }, " ")
  if n == nil and peer == dst then n = 1000 end
  return s:copyto(d, n)
end
local ops = {
  function(s) return s:read(({ "l", "L", "a", R(0, 9000), "*l", "n" })[R(6)]) end,
  function(s) return s:read(1, "l", 2) end,
  function(s) local it = s:lines() return it() end,
  function(s) return s:readuntil(({ "\r\n\r\n", "x", "" })[R(3)]) end,
  function(s) return s:recv(odd[R(#odd)]) end,
  function(s) return s:recv() end,
  function(s) return s:recvfrom(odd[R(#odd)]) end,
  function(s) return s:chunks(R(1, 100))() end,
  function(s) return s:send(str(R(0, 70000)), R(-3, 3), R(-3, 100000)) end,
  function(s) return s:write(str(R(0, 20)), str(R(0, 90000)), R(0, 9)) end,
  function(s) return s:flush() end,
  function(s) return s:sendto("dgram", "127.0.0.1", listeners[1] and listeners[1].port or 9) end,
  function(s) return s:sendto("dgram", "::1", R(0, 65535)) end,
  function(s) return s:accept() end,
  function(s)
    local l = listeners[R(#listeners)]
    if not l then return end
    if l.path then return s:connect(l.path) end
    return s:connect(l.family == "inet6" and "::1" or "127.0.0.1", l.port)
  end,
  function(s) return s:shutdown(({ "r", "w", "rw" })[R(3)]) end,
  function(s) return s:close() end,
  function(s) return s:settimeout(R(0, 3) == 0 and 0 or R(1, 30) / 1000) end,
  function(s) return s:setoption(({ "nodelay", "keepalive", "reuseaddr", "broadcast" })[R(4)], R(2) == 1) end,
  function(s) return s:setoption("linger", R(0, 2)) end,
  function(s) return s:getoption("sndbuf") end,
  function(s) return s:getsockname() end,
  function(s) return s:getpeername() end,
  function(s) return s:state() end,
  function(s) return tostring(s) end,
  function(s) return s:setreadlimit(R(0, 100)) end,
  copyto,
  function(s) return s:readresp() end,
  function(s) return s:writeresp({ "SET", "k", str(R(0, 100)) }) end,
  function(s) return csock.select({ s, pick() }, { pick() }, R(0, 20) / 1000) end,
  function(s) return csock.waitfd(s:fileno(), ({ "r", "w", "rw" })[R(3)], R(0, 20) / 1000) end,
  function() return csock.sleep(R(0, 5) / 1000) end,
  more, more, more,
  function() return csock.getaddrinfo("localhost", R(0, 65535), nil, nil, 0.05) end,
  function()
    local l = listeners[R(#listeners)]
    if not l or l.path then return end
    return csock.connect(l.family == "inet6" and "::1" or "127.0.0.1", l.port, { timeout = R(0, 30) / 1000 })
  end,
}
local slow, failed = 0, 0
local function run_ops(n)
  for _ = 1, n do
    local s = pick()
    local op = R(#ops)
    -- the bound: the socket's timeout, or the op's own argument: at most 0.05
    local bound = 0.05
    local t0 = csock.gettime()
    local r = table.pack(pcall(ops[op], s))
    local elapsed = csock.gettime() - t0
    for i = 2, r.n do -- new sockets join the program
      if type(r[i]) == "userdata" and tostring(r[i]):find("^csock.socket") then add(r[i], 0.01) end
    end
    -- copyto's timeout counts from the last byte it moved, which other tasks may keep feeding
    if elapsed > bound + slack and not (mode == "tasks" and ops[op] == copyto) then
      slow = slow + 1
      print(("SLOW op %d on %s: %.3f s %s"):format(op, tostring(s), elapsed, tostring(r[3] or r[2])))
    end
  end
end
setup()
if mode == "tasks" then
  csock.run(function()
    local tasks = {}
    for i = 1, 4 do tasks[i] = csock.spawn(run_ops, nops // 4) end
    for _, t in ipairs(tasks) do
      local ok, err = t:join()
      if not ok and err then failed = failed + 1 print("task failed: " .. tostring(err)) end
    end
  end)
else
  run_ops(nops)
end
for _, s in ipairs(socks) do s:close() end
for _, l in ipairs(listeners) do if l.path then os.remove(l.path) end end
print(slow + failed == 0 and "ok" or ("slow calls: " .. slow .. ", failed tasks: " .. failed))
]]

describe("random calls with short timeouts, shutdowns and closes between them", function()
  for _, mode in ipairs({ "plain", "tasks" }) do
    for _, seed in ipairs({ 1, 2, os.time() % 100000 }) do
      it(("%s, seed %d: no call outlives its timeout by %.1f s, no crash"):format(mode, seed, SLACK), function()
        local out, code = H.child(PROGRAM, seed, mode, 600, SLACK)
        assert.are.equal(0, code, out)
        assert.is_truthy(out:find("\nok\n$") or out:find("^ok\n$"), out)
      end)
    end
  end
end)
