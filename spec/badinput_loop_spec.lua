-- Bad input for the loop: wrong `self` and wrong types for task, timer,
-- cond and server methods; argument and result lists longer than the C
-- stack's guaranteed room (run in a child, so a crash fails one test, not
-- the run); and edge cases of the loop.
--
-- Each case gets a Lua error (pcall false and a message) or nil, message:
-- never a crash, never a wrapped or truncated number. After each one the
-- socket, or the loop, is checked to be usable still (H.assert_usable,
-- H.assert_loop_usable). See also spec/badargs_spec.lua.
local csock = require "csock"
local H = require "helper"

local show, assert_loop_usable = H.show, H.assert_loop_usable

describe("wrong self and wrong types for the loop's objects", function()
  it("task, timer and cond methods called on other values raise", function()
    local task = csock.spawn(function() end)
    local timer = csock.timer(10, function() end)
    local cond = csock.cond()
    local join, status = task.join, task.status
    local cancel, active = timer.cancel, timer.active
    local wait, signal, broadcast = cond.wait, cond.signal, cond.broadcast
    local s = csock.socket()
    for _, v in ipairs({ 5, "x", {}, true, s, print }) do
      H.assert_raises(nil, join, v)
      H.assert_raises(nil, status, v)
      H.assert_raises(nil, cancel, v)
      H.assert_raises(nil, active, v)
      H.assert_raises(nil, wait, v)
      H.assert_raises(nil, signal, v)
      H.assert_raises(nil, broadcast, v)
    end
    -- a task is not a timer, a timer is not a cond, a cond is not a task
    H.assert_raises(nil, cancel, task)
    H.assert_raises(nil, wait, timer)
    H.assert_raises(nil, join, cond)
    H.assert_raises(nil, s.recv, task)
    s:close()
    timer:cancel()
    assert.are.same({ n = 0 }, table.pack(task:join()))
    assert_loop_usable()
  end)

  it("csock.spawn, run, timer, onerror, signal, _serve with wrong types raise, and change nothing", function()
    local function blocked()
      for line in io.lines("/proc/self/status") do
        local v = line:match("^SigBlk:%s+(%x+)")
        if v then return v end
      end
    end
    local before = blocked()
    for _, v in ipairs({ 5, "x", {}, true }) do
      H.assert_raises(nil, csock.spawn, v)
      H.assert_raises(nil, csock.timer, 1, v)
      H.assert_raises(nil, csock.onerror, v)
      H.assert_raises(nil, csock.signal, "USR1", v) -- the name is fine, the handler is not
      H.assert_raises(nil, csock.signal, v, function() end)
    end
    H.assert_raises(nil, csock.signal, "NOPE", function() end)
    H.assert_raises(nil, csock.signal, "SIGKILL", function() end)
    H.assert_raises(nil, csock._serve, {}, print)
    H.assert_raises(nil, csock._serve, csock.socket(), "not a function")
    H.assert_raises(nil, csock._serve, csock.socket(), print, -1)
    H.assert_raises(nil, csock._serve, csock.socket(), print, 1.5)
    H.assert_raises(nil, csock._serve, csock.socket(), print, nil, "soon")
    local closed = csock.socket(); closed:close()
    H.assert_raises(nil, csock._serve, closed, print)
    assert.are.equal(before, blocked(), "the signal mask changed")
    assert_loop_usable()
  end)

  it("server methods on a non-server raise; a closed server's close and getsockname", function()
    local server
    csock.run(function()
      server = assert(csock.listen("127.0.0.1", 0, function() end))
      -- written in Lua: the error is Lua's own ("attempt to index ...")
      assert.is_false(pcall(server.close, {}))
      assert.is_false(pcall(server.getsockname, 5))
      local host, port = server:getsockname()
      assert.are.equal("127.0.0.1", host)
      assert.are.equal("integer", math.type(port))
      assert.are.equal(true, server:close())
    end)
    assert.are.equal(true, server:close())
    local err = H.assert_raises(nil, server.getsockname, server) -- its socket is closed
    assert.is_truthy(err:find("attempt to use a closed socket", 1, true), err)
    H.nothing_left()
  end)

  it("csock.connect with options that are not a table raises", function()
    for _, opts in ipairs({ "fast", 5, true }) do
      local ok, err = pcall(csock.connect, "127.0.0.1", H.free_port(), opts)
      assert.is_false(ok, "csock.connect(host, port, " .. show(opts) .. ") did not raise")
      assert.is_falsy(tostring(err):find("attempt to index", 1, true), err)
    end
  end)

  it("csock.listen{reuseport = <not a boolean>} raises like the other options", function()
    local ok, r = pcall(csock.listen, "127.0.0.1", 0, function() end, { reuseport = "yes" })
    if ok and r then r:close() end
    assert.is_false(ok, "reuseport = 'yes' was accepted")
    H.nothing_left()
  end)
end)

describe("inputs past the C stack's guaranteed room (run in a child: a crash fails only this test)", function()
  local function child(code)
    local out, status = H.spawn_peer(code):finish()
    return out, status
  end

  it("read with 2..3000 formats returns one value per format (or raises), never overruns the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local H = require "helper"
      local c, s = H.tcp_pair()
      for n = 2, 3000, 7 do
        c:send(string.rep("x", n))
        local fmts = {}
        for i = 1, n do fmts[i] = 1 end
        local ok, r = pcall(function() return table.pack(s:read(table.unpack(fmts))) end)
        if ok and r.n ~= n then print("read with " .. n .. " formats returned " .. r.n .. " values") os.exit(1) end
        if not ok then s:read(n) end -- raised: take the bytes
      end
      print("ok")
    ]])
    assert.are.same({ "ok\n", 0 }, { out, code })
  end)

  it("csock.spawn and csock.run with 5,000 arguments pass them all (or raise), never overrun the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local args = {}
      for i = 1, 5000 do args[i] = i end
      local ok, n = pcall(function()
        return csock.spawn(function(...) return select("#", ...) end, table.unpack(args)):join()
      end)
      print("spawn", ok and n or "raised")
      ok, n = pcall(csock.run, function(...) return select("#", ...) end, table.unpack(args))
      print("run", ok and n or "raised")
    ]])
    assert.are.same({ "spawn\t5000\nrun\t5000\n", 0 }, { out, code })
  end)

  it("a task returning 5,000 values: join and run return them all (or raise), never overrun the stack", function()
    local out, code = child([[
      local csock = require "csock"
      local function many()
        local v = {}
        for i = 1, 5000 do v[i] = i end
        return table.unpack(v)
      end
      local ok, r = pcall(function() return table.pack(csock.spawn(many):join()) end)
      print("join", ok and r.n or "raised")
      ok, r = pcall(function() return table.pack(csock.run(many)) end)
      print("run", ok and r.n or "raised")
    ]])
    assert.are.same({ "join\t5000\nrun\t5000\n", 0 }, { out, code })
  end)

  it("select with a table whose __len lies raises", function()
    for _, len in ipairs({ -5, 1.5, 3 }) do
      local liar = setmetatable({}, { __len = function() return len end })
      H.assert_raises(nil, csock.select, liar, {}, 0)
      H.assert_raises(nil, csock.select, {}, liar, 0)
      local r = table.pack(csock.run(function() return pcall(csock.select, liar, {}, 0.05) end))
      assert.are.equal(false, r[1])
    end
    assert_loop_usable()
  end)

  it("write with 5,000 arguments and select with 5,000 sockets work", function()
    local c, s = H.tcp_pair()
    local parts = {}
    for i = 1, 5000 do parts[i] = "x" end
    assert.are.equal(c, c:write(table.unpack(parts)))
    assert.are.equal(string.rep("x", 5000), s:read(5000))
    local many = {}
    for i = 1, 5000 do many[i] = c end
    local r, w = csock.select(many, many, 0)
    assert.are.equal(0, #r)
    assert.are.equal(5000, #w)
    c:close(); s:close()
  end)
end)

describe("edge cases of the loop", function()
  it("csock.waitfd on the fd of a csock socket the loop already watches, in a task, works", function()
    local c, s = H.tcp_pair()
    local r
    csock.run(function()
      s:settimeout(1)
      csock.spawn(function() csock.sleep(0.05) c:send("a") end)
      assert.are.equal("a", s:recv())            -- s is now watched by the loop
      csock.spawn(function() csock.sleep(0.05) c:send("b") end)
      r = table.pack(csock.waitfd(s:fileno(), "r", 1))
    end)
    assert.are.same({ n = 1, true }, r)
    assert.are.equal("b", s:recv())
    c:close(); s:close()
    H.nothing_left()
  end)
end)
