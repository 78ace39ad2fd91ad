-- Faults: csock.connect under one deadline {timeout = 0.5}: a name that does
-- not resolve, a port nobody listens on, a full backlog, a resolver that
-- never answers.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local E = csock.errno

describe("csock.connect under one deadline {timeout = 0.5}", function()
  local function timed_connect(...)
    local elapsed, r = H.timed(csock.connect, ...)
    if r[1] then r[1]:close() end
    return elapsed, r
  end

  it("a name that does not resolve: nil and the resolver's message, at once (blocking and in a task)", function()
    local elapsed, r = timed_connect("no-such-host.invalid", 80, { timeout = 0.5 })
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    assert.is_true(elapsed < 0.7, "elapsed " .. elapsed)
    local tr, telapsed
    csock.run(function()
      telapsed, tr = timed_connect("no-such-host.invalid", 80, { timeout = 0.5 })
    end)
    assert.is_nil(tr[1])
    assert.is_true(tr[2] == r[2] or tr[2] == "timeout", tostring(tr[2]))
    assert.is_true(telapsed < 0.7, "elapsed " .. telapsed)
    H.nothing_left()
  end)

  it("a port nobody listens on: nil, 'connection refused', ECONNREFUSED at once", function()
    local port = H.free_port()
    local elapsed, r = timed_connect("127.0.0.1", port, { timeout = 0.5 })
    assert.are.same({ n = 3, nil, "connection refused", E.ECONNREFUSED }, r)
    assert.is_true(elapsed < 0.3, "elapsed " .. elapsed)
  end)

  it("a listener whose backlog is full (connects hang): nil, 'timeout', ETIMEDOUT after ~0.5 s, blocking and in a task", function()
    local l, port = H.listener { backlog = 0 }
    local fillers = {}
    for i = 1, 10 do -- fill the backlog: the first connect that hangs shows it is full
      local f = csock.socket()
      f:settimeout(0.2)
      fillers[i] = f
      if not f:connect("127.0.0.1", port) then break end
    end
    local elapsed, r = timed_connect("127.0.0.1", port, { timeout = 0.5 })
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.49 and elapsed < 1, "elapsed " .. elapsed)
    local tr, telapsed
    csock.run(function()
      telapsed, tr = timed_connect("localhost", port, { timeout = 0.5 }) -- resolution + connect
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, tr)
    assert.is_true(telapsed >= 0.49 and telapsed < 1, "elapsed " .. telapsed)
    for _, f in ipairs(fillers) do f:close() end
    l:close()
    H.nothing_left()
  end)

  -- A resolver that takes 3 s (spec/tools/slowdns.c, no packet sent): the
  -- deadline must cover the lookup too.
  local SLOW = [[
    local csock = require "csock"
    local function try(...)
      local t0 = csock.now()
      local r = table.pack(csock.connect(...))
      return string.format("%s %s %.1f", tostring(r[1]), tostring(r[2]), csock.now() - t0)
    end
    if arg[1] == "task" then
      csock.run(function() print(try("x.slow.invalid", 80, { timeout = 0.5 })) end)
    else
      print(try("x.slow.invalid", 80, { timeout = 0.5 }))
    end
    os.exit(0) -- without waiting for the resolver thread at exit
  ]]

  it("a resolver that never answers, in a task: nil, 'timeout' after ~0.5 s", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with(H.preload(so), SLOW, "task"):finish()
    assert.are.equal(0, code)
    assert.are.equal("nil timeout 0.5\n", out)
  end)

  it("a resolver that never answers, blocking: nil, 'timeout' after ~0.5 s", function()
    local so = H.build_shim("slowdns")
    finally(function() os.remove(so) end)
    local out, code = H.spawn_peer_with(H.preload(so), SLOW, "blocking"):finish()
    assert.are.equal(0, code)
    assert.are.equal("nil timeout 0.5\n", out)
  end)
end)
