-- Integrity under load: 1,000 concurrent connections, each sending 1 MiB of
-- pseudo-random bytes in random-sized writes (1..64 KiB) through an echo
-- server, every byte checked on its way back.
--
-- The server (csock.listen, chunks() and write()) runs in this busted
-- process, so `make asan` and `make valgrind` check it; the client is a
-- child process running two tasks per connection (a writer and a reader),
-- so both directions of every connection are busy at once. Each connection
-- k sends base[off_k + 1 .. off_k + SIZE] of a shared 2 MiB pseudo-random
-- buffer, and its reader compares every piece it gets with the same slice
-- (string equality: memcmp), so a lost, repeated, reordered or corrupted
-- byte fails the test with the connection and offset.
--
-- Half of the client's readers use recv(), half use read(n) with random n
-- (the buffered reader). Both backends: the suite runs once per backend.
local csock = require "csock"
local H = require "helper"

H.deadline(120) -- its test moves 1,000 x 1 MiB each way: more than H.TEST_DEADLINE allows

local MiB = 1048576
-- 1,000 x 1 MiB takes ~5 s per backend on a 2-core machine; under valgrind
-- (the server runs ~50 times slower) the same checks run on a smaller load.
local N = H.UNDER_VALGRIND and 40 or 1000
local SIZE = H.UNDER_VALGRIND and 256 * 1024 or MiB

local CLIENT = [[
  local csock = require "csock"
  local H = require "helper"
  local port, N, SIZE = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
  local base = H.pattern(2 * 1048576, 11)
  local failures = {}
  local function fail(k, msg)
    failures[#failures + 1] = ("connection %d: %s"):format(k, msg)
  end

  -- a small deterministic generator per connection
  local function rng(seed)
    local x = seed % 2147483648
    return function(n)
      x = (x * 1103515245 + 12345) % 2147483648
      return 1 + (x >> 8) % n
    end
  end

  local function connection(k)
    local c, err = csock.connect("127.0.0.1", port, { timeout = 15 })
    if not c then return fail(k, "connect: " .. tostring(err)) end
    local off = (k * 7919) % 1048576
    local writer = csock.spawn(function()
      local size = rng(k * 7 + 1)
      local sent = 0
      while sent < SIZE do
        local n = math.min(size(65536), SIZE - sent)
        local ok, e = c:write(base:sub(off + sent + 1, off + sent + n))
        if not ok then return "write at " .. sent .. ": " .. tostring(e) end
        sent = sent + n
      end
      local ok, e = c:shutdown("w") -- after the coalesced output, then FIN
      if not ok then return "shutdown: " .. tostring(e) end
      return true
    end)
    local size = rng(k * 13 + 5)
    local got = 0
    while true do
      local d, e
      if k % 2 == 0 then d, e = c:recv() else d, e = c:read(size(100000)) end
      if not d then
        if e ~= "closed" then fail(k, "read at " .. got .. ": " .. tostring(e)) end
        break
      end
      if d ~= base:sub(off + got + 1, off + got + #d) then
        local want = base:sub(off + got + 1, off + got + #d)
        local i = H.first_diff(d, want) or 0
        fail(k, ("bytes differ at offset %d"):format(got + i - 1))
        break
      end
      got = got + #d
    end
    local w = writer:join()
    if w ~= true then fail(k, tostring(w)) end
    if got ~= SIZE and #failures == 0 then fail(k, "got " .. got .. " bytes back") end
    c:close()
  end

  csock.run(function()
    local tasks = {}
    for k = 1, N do tasks[k] = csock.spawn(connection, k) end
    for k = 1, N do tasks[k]:join() end
  end)
  for i = 1, math.min(#failures, 5) do print(failures[i]) end
  if #failures > 5 then print("... " .. #failures .. " failures in all") end
  print(("checked %d connections x %d bytes"):format(N, SIZE))
]]

describe("integrity under load", function()
  it(("%d concurrent connections x %d KiB in random-sized writes come back through an echo server byte for byte")
      :format(N, SIZE // 1024), function()
    local served, failed, bytes = 0, {}, {}
    csock.onerror(function(err) failed[#failed + 1] = err end)
    local peer, elapsed
    local t0 = csock.now()
    csock.run(function()
      -- the idle timeout ends a stuck connection (the test then fails)
      -- instead of hanging the suite
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        local n = 0
        for d in conn:chunks() do
          n = n + #d
          local ok, err = conn:write(d)
          if not ok then error("echo write: " .. tostring(err)) end
        end
        bytes[#bytes + 1] = n
        served = served + 1
      end, { timeout = 15, backlog = 1024 }))
      local _, port = server:getsockname()
      peer = H.spawn_peer(CLIENT, port, N, SIZE)
      local deadline = csock.now() + 100
      while served + #failed < N and csock.now() < deadline do csock.sleep(0.05) end
      server:close()
    end)
    elapsed = csock.now() - t0
    local out, code = peer:finish()
    assert.are.equal(("checked %d connections x %d bytes\n"):format(N, SIZE), out)
    assert.are.equal(0, code)
    assert.are.same({}, failed)
    assert.are.equal(N, served)
    for i = 1, N do
      if bytes[i] ~= SIZE then
        error(("a server connection echoed %d bytes, not %d"):format(bytes[i], SIZE))
      end
    end
    assert.is_false(csock.step(), "a task or a timer was left in the loop")
    assert.is_true(elapsed < 90, ("took %.1f s"):format(elapsed))
  end)
end)
