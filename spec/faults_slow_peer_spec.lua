-- Faults: slow peers. A peer that never reads (writers time out, memory
-- stays bounded), and slowloris against csock.listen{timeout = 1}.
--
-- Each test has a deadline (the watchdog) and every socket has a timeout;
-- peers that must run concurrently with a blocking call are child
-- processes under `timeout`. The loop is shared by the whole busted
-- process, so each test leaves it empty.
local csock = require "csock"
local H = require "helper"

local E = csock.errno
local MiB = 1048576

describe("a peer that never reads", function()
  local TOTAL = H.UNDER_VALGRIND and 64 * MiB or 256 * MiB

  it("blocking: write(" .. TOTAL // MiB .. " MiB) with settimeout(0.5) gives nil, 'timeout', ETIMEDOUT; RSS grows < 32 MiB", function()
    local c, s = H.tcp_pair()
    local big = H.filled(TOTAL, "b")
    collectgarbage()
    local before = H.rss_kib()
    c:settimeout(0.5)
    local elapsed, r = H.timed(c.write, c, big)
    local grown = H.rss_kib() - before
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(elapsed >= 0.49 and elapsed < 3, "elapsed " .. elapsed)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    s:close(); c:close()
  end)

  it("in a task: " .. TOTAL // MiB .. " MiB in 64 KiB writes stops at nil, 'timeout'; RSS grows < 32 MiB", function()
    local c, s = H.tcp_pair()
    local chunk = string.rep("c", 65536)
    collectgarbage()
    local before = H.rss_kib()
    local r, accepted, elapsed, grown
    csock.run(function()
      c:settimeout(0.5)
      local t0 = csock.now()
      accepted = 0
      for _ = 1, TOTAL // #chunk do
        r = table.pack(c:write(chunk))
        if r[1] == nil then break end
        accepted = accepted + #chunk
      end
      elapsed = csock.now() - t0
      grown = H.rss_kib() - before
      s:close() -- lets the rest of c's output fail at once
      c:close()
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(accepted < 64 * MiB, "accepted " .. accepted .. " bytes")
    assert.is_true(elapsed >= 0.49 and elapsed < 5, "elapsed " .. elapsed)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    H.nothing_left()
  end)

  it("in a task: one write(" .. TOTAL // MiB .. " MiB) gives nil, 'timeout'; RSS grows < 32 MiB (no copy of the string)", function()
    local c, s = H.tcp_pair()
    local big = H.filled(TOTAL, "d")
    collectgarbage()
    local before = H.rss_kib()
    local r, grown
    csock.run(function()
      c:settimeout(0.5)
      r = table.pack(c:write(big))
      grown = H.rss_kib() - before
      s:close()
      c:close()
    end)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, r)
    assert.is_true(grown < 32 * 1024, "RSS grew by " .. grown .. " KiB")
    H.nothing_left()
  end)
end)

describe("slowloris against csock.listen{timeout = 1}", function()
  -- A child that connects and sends one byte per `every` seconds, `count`
  -- times, then stays silent; it reports when its connection was closed.
  local DRIBBLER = [[
    local csock = require "csock"
    local port, every, count = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
    local c = assert(csock.connect("127.0.0.1", port, { timeout = 5 }))
    local t0 = csock.now()
    for i = 1, count do
      csock.sleep(every)
      if not c:send("a") then break end
    end
    c:settimeout(8)
    local d, err = c:recv()
    print(string.format("%s %.1f", tostring(d or err), csock.now() - t0))
  ]]

  -- runs a server whose handler is `handler(conn)` (returning a table of
  -- facts) against one dribbler; returns the facts, the handler's time and
  -- the dribbler's report
  local function serve(handler, every, count)
    local facts, elapsed, peer
    csock.run(function()
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        local t0 = csock.now()
        facts = handler(conn)
        elapsed = csock.now() - t0
      end, { timeout = 1 }))
      local _, port = server:getsockname()
      peer = H.spawn_peer(DRIBBLER, port, every, count)
      while elapsed == nil do csock.sleep(0.05) end
      server:close()
    end)
    local out, code = peer:finish()
    H.nothing_left()
    return facts, elapsed, out, code
  end

  it("a line trickled one byte per 0.3 s: read('l') gives up after ~1 s (the timeout covers the whole call), bytes kept", function()
    local facts, elapsed, out, code = serve(function(conn)
      local r = table.pack(conn:read("l"))
      conn:settimeout(0)
      return { read = r, kept = conn:recv() }
    end, 0.3, 20)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, facts.read)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the read lasted " .. elapsed)
    -- what trickled in before the timeout is still there (3 bytes by 1 s)
    assert.is_truthy(facts.kept and facts.kept:match("^a+$"), tostring(facts.kept))
    assert.is_true(#facts.kept >= 2 and #facts.kept <= 4, "kept " .. #facts.kept)
    -- the server closed the connection: the dribbler's recv saw it
    assert.are.equal(0, code)
    assert.is_truthy(out:match("^closed %d") or out:match("^connection reset by peer %d"), out)
  end)

  it("lines() in the handler: the trickle ends the loop quietly after ~1 s and the connection is closed", function()
    local facts, elapsed, out, code = serve(function(conn)
      local n = 0
      for _ in conn:lines() do n = n + 1 end
      return { lines = n }
    end, 0.3, 20)
    assert.are.same({ lines = 0 }, facts)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the handler lasted " .. elapsed)
    assert.are.equal(0, code)
    local t = tonumber(out:match("^%S+ ([%d.]+)"))
    assert.is_truthy(t, out)
    assert.is_true(t < 3, "the dribbler saw the close after " .. t .. " s")
  end)

  it("chunks() in the handler: each recv waits up to 1 s, so the trickle keeps it; closed 1 s after it stops", function()
    local facts, elapsed, out, code = serve(function(conn)
      local n = 0
      for d in conn:chunks() do n = n + #d end
      return { bytes = n }
    end, 0.3, 6) -- 6 bytes over 1.8 s, then silence
    assert.are.same({ bytes = 6 }, facts)
    assert.is_true(elapsed >= 2.6 and elapsed < 3.8, "the handler lasted " .. elapsed)
    assert.are.equal(0, code)
    assert.is_truthy(out:match("^closed %d") or out:match("^connection reset by peer %d"), out)
  end)

  it("a client that connects and sends nothing is closed after ~1 s", function()
    local facts, elapsed, out, code = serve(function(conn)
      return { read = table.pack(conn:read("l")) }
    end, 0, 0)
    assert.are.same({ n = 3, nil, "timeout", E.ETIMEDOUT }, facts.read)
    assert.is_true(elapsed >= 0.95 and elapsed < 2, "the read lasted " .. elapsed)
    assert.are.equal(0, code)
    local t = tonumber(out:match("^closed ([%d.]+)"))
    assert.is_truthy(t, out)
    assert.is_true(t >= 0.9 and t < 2.5, "closed after " .. t)
  end)
end)
