-- bin/csock --workers N: the workers' listeners (reuseport), csock.worker, restarts after a
-- failure, and how signals and the parent's death reach them.
-- Every child runs under `timeout`; servers take free ports. What the host specs share is in
-- spec/host_helper.lua. Run alone from the repo root (busted reads .busted there):
-- busted spec/host_workers_spec.lua
local H = require "helper"
local X = require "host_helper"

local q = H.shell_quote
local BIN, script, run, start, kill, connect = X.BIN, X.script, X.run, X.start, X.kill, X.connect
local refused, alive, running, pgid_of = X.refused, X.alive, X.running, X.pgid_of
local children = X.children

-- A server for --workers: greets each connection with "worker W pid P ppid PP pgid G
-- reuseport R"; then a line the client sends is a request: it prints "handling <line>",
-- sleeps 1 s and answers "done <line>".
local WORKER_SERVER = [[
local port = math.tointeger(tonumber(arg[1]))
local s
s = assert(csock.listen("127.0.0.1", port, function(conn)
  local f <close> = assert(io.open("/proc/self/stat"))
  local pid, ppid, pgid = f:read("a"):match("^(%d+) %b() %S+ (%d+) (%d+)")
  conn:write(("worker %d pid %s ppid %s pgid %s reuseport %s\n"):format(csock.worker, pid, ppid, pgid,
    tostring(s.socket:getoption("reuseport"))))
  local line = conn:read("l")
  if not line then return end
  print("handling " .. line)
  csock.sleep(1)
  conn:write("done ", line, "\n")
end))
]]

describe("csock --workers N", function()
  -- One greeting, or nil when no worker answers (not up yet, or just killed). With keep,
  -- the connection stays open and is returned too.
  local function ask(port, keep)
    local c = connect(port, 2)
    if not c then return nil end
    local line = c:read("l")
    if not keep then c:close() end
    local w, pid, ppid, pgid, rp =
      tostring(line):match("^worker (%d+) pid (%d+) ppid (%d+) pgid (%d+) reuseport (%a+)$")
    if not w then
      if keep then c:close() end
      return nil
    end
    return { worker = tonumber(w), pid = math.tointeger(tonumber(pid)), ppid = math.tointeger(tonumber(ppid)),
             pgid = math.tointeger(tonumber(pgid)), reuseport = rp }, keep and c or nil
  end

  -- Asks until pred(reply) holds (at most `tries` replies or `seconds`); returns the replies
  -- and whether pred held.
  local function ask_until(port, pred, tries, seconds)
    local replies, deadline = {}, H.now() + seconds
    while #replies < tries and H.now() < deadline do
      local r = ask(port)
      if r then
        replies[#replies + 1] = r
        if pred(r, replies) then return replies, true end
      end
      H.sleep(0.01) -- paced: a restart takes 0.1 s, in which a tight loop makes a thousand connections
    end
    return replies, false
  end

  it("both workers answer; a killed worker is replaced; SIGTERM stops them all and exits 0", function()
    local port = H.free_port()
    local proc = start("--workers 2 " .. q(script(WORKER_SERVER)) .. " " .. port)
    -- fresh connections until both worker ids have answered
    local pids = {}
    local replies, ok = ask_until(port, function(r)
      pids[r.worker] = r.pid
      return pids[1] and pids[2]
    end, 400, 10)
    assert.is_true(ok, "replies from " .. #replies .. " connections, not from both workers")
    local parent = replies[1].ppid
    for _, r in ipairs(replies) do
      assert.are.equal(parent, r.ppid)
      assert.are.equal(pids[r.worker], r.pid)
      assert.are.equal("true", r.reuseport)
    end
    assert.are_not.equal(pids[1], pids[2])
    local expected = { pids[1], pids[2] }
    table.sort(expected)
    assert.are.same(expected, children(parent))

    -- kill -9 worker 1: a new worker 1 answers within a few seconds
    kill(9, pids[1])
    local _, back = ask_until(port, function(r) return r.worker == 1 and r.pid ~= pids[1] end, 500, 5)
    assert.is_true(back, "no new worker 1 within 5 s; children now: " .. table.concat(children(parent), " ")
      .. "; stderr: " .. tostring(proc:stderr()))
    assert.is_false(alive(pids[1]))
    local now_children = children(parent)
    assert.are.equal(2, #now_children)
    assert.truthy(now_children[1] == pids[2] or now_children[2] == pids[2])
    assert.truthy(proc:stderr():find("csock: worker 1 (pid " .. pids[1] .. ") killed by signal 9; restarting",
      1, true), proc:stderr())

    -- SIGTERM to the parent: every worker stops, the parent exits 0
    local workers = children(parent)
    local t0 = H.now()
    kill("TERM", parent)
    local _, _, code = proc:finish()
    assert.are.equal(0, code)
    assert.is_true(H.now() - t0 < 4, "elapsed " .. (H.now() - t0))
    for _, pid in ipairs(workers) do assert.is_false(alive(pid), "worker " .. pid .. " left running") end
    assert.is_false(alive(parent))
    assert.truthy(refused(port, 0.5))
  end)

  it("without --workers, csock.worker is nil and csock.listen sets no reuseport", function()
    local out, err, code, elapsed = run([[-e 'local s = csock.listen("127.0.0.1", 0, function() end)
print(csock.worker, s.socket:getoption("reuseport")); s:close()']])
    assert.are.equal("nil\tfalse\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed) -- closing the only listener ends the loop
  end)

  it("csock.worker is CSOCK_WORKER as an integer, nil if unset or not an integer", function()
    for value, want in pairs({ ["3"] = "3", ["17"] = "17", [""] = "nil", ["x"] = "nil", ["1.5"] = "nil" }) do
      local out, err, code = run([[-e 'print(csock.worker)']], { env = "CSOCK_WORKER=" .. q(value) })
      assert.are.same({ want .. "\n", "", 0 }, { out, err, code }, "CSOCK_WORKER=" .. value)
    end
    local out = run([[-e 'print(csock.worker)']], { env = "env -u CSOCK_WORKER" })
    assert.are.equal("nil\n", out)
  end)

  it("a worker whose script fails at once is restarted after a pause, again and again", function()
    local path = script([[
local f <close> = assert(io.open("/proc/self/stat"))
io.stderr:write("up ", csock.worker, " ppid ", f:read("a"):match("^%d+ %b() %S+ (%d+)"), "\n")
error("broken")
]])
    local proc = start("--workers 1 " .. q(path))
    local parent = H.eventually(function() return (proc:stderr() or ""):match("^up 1 ppid (%d+)\n") end, 5)
    assert.truthy(parent, "the worker never started: " .. tostring(proc:stderr()))
    H.sleep(1.2)
    kill("TERM", parent)
    local _, err, code = proc:finish()
    assert.are.equal(0, code)
    local starts = select(2, err:gsub("up 1 ppid %d+\n", ""))
    local restarts = select(2, err:gsub("csock: worker 1 %(pid %d+%) exited with 1; restarting after a pause\n", ""))
    -- back-off 0.1, 0.2, 0.4, 0.8 s: 4 or 5 starts in 1.2 s, not hundreds
    assert.is_true(starts >= 3 and starts <= 6, "started " .. starts .. " times:\n" .. err)
    assert.is_true(restarts >= 2, err)
  end)

  -- Both workers' greetings (asking until each id has answered); fails after 10 s.
  local function both_workers(port, proc)
    local seen = {}
    local replies, ok = ask_until(port, function(r)
      seen[r.worker] = r
      return seen[1] and seen[2]
    end, 400, 10)
    assert.is_true(ok, "replies from " .. #replies .. " connections, not from both workers; stderr: "
      .. tostring(proc:stderr()))
    return seen[1], seen[2]
  end

  -- Kills with SIGKILL whatever is left of pids (after a test that failed).
  local function reap(pids)
    for _, pid in ipairs(pids) do
      if running(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
    end
  end

  it("a worker whose script finishes with status 0 is not restarted; --workers 2 -e 'print(1)' exits 0", function()
    local out, err, code, elapsed = run("--workers 2 -e 'print(1)'")
    assert.are.equal("1\n1\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed < 2, "elapsed " .. elapsed)
  end)

  it("a worker that finished is not restarted while the other one serves on", function()
    local port = H.free_port()
    local path = script('if csock.worker == 1 then print("worker 1 done") return end\n' .. WORKER_SERVER)
    local proc = start("--workers 2 " .. q(path) .. " " .. port)
    assert.are.equal("worker 1 done", proc:line())
    local first
    local replies = ask_until(port, function(r) first = first or r return false end, 20, 3)
    assert.is_true(#replies >= 10, #replies .. " replies")
    finally(function() reap({ first.pid }) end)
    for _, r in ipairs(replies) do assert.are.same({ 2, first.pid }, { r.worker, r.pid }) end
    assert.are.same({ first.pid }, children(first.ppid))
    kill("TERM", first.ppid)
    local _, err, code = proc:finish()
    assert.are.equal("", err) -- no "restarting"
    assert.are.equal(0, code)
  end)

  it("Ctrl-C to the parent's process group reaches only the parent: the request in flight completes, exit 0", function()
    local port = H.free_port()
    -- setsid: the parent leads a process group of its own, as a shell's foreground job does
    local proc = start("--workers 2 " .. q(script(WORKER_SERVER)) .. " " .. port, "setsid -w " .. BIN)
    local w1, w2 = both_workers(port, proc)
    local parent = w1.ppid
    finally(function() reap({ w1.pid, w2.pid }) end)
    assert.are.equal(parent, pgid_of(parent))
    -- each worker in a process group of its own, not the parent's
    assert.are.same({ w1.pid, w2.pid }, { w1.pgid, w2.pgid })
    local r, c = ask(port, true)
    assert.truthy(r, "no worker answered")
    c:write("hi\n")
    assert.are.equal("handling hi", proc:line())
    local t0 = H.now()
    kill("INT", "-" .. parent) -- what a terminal's ^C does: SIGINT to the foreground process group
    assert.are.equal("done hi\n", c:read("a"))
    c:close()
    local out, err, code = proc:finish()
    local elapsed = H.now() - t0
    assert.are.equal("", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(elapsed >= 0.5 and elapsed < 4, "elapsed " .. elapsed)
    assert.is_false(running(w1.pid))
    assert.is_false(running(w2.pid))
    assert.truthy(refused(port, 0.5))
  end)

  it("workers end when the parent is killed with SIGKILL: none is left and the port is refused", function()
    local port = H.free_port()
    local proc = start("--workers 2 --grace 1 " .. q(script(WORKER_SERVER)) .. " " .. port)
    local w1, w2 = both_workers(port, proc)
    finally(function() reap({ w1.pid, w2.pid }) end)
    kill(9, w1.ppid)
    -- within --grace + 1 s
    local gone = H.eventually(function() return not running(w1.pid) and not running(w2.pid) end, 2)
    assert.truthy(gone, "workers left running after kill -9 of their parent: "
      .. tostring(running(w1.pid) and w1.pid or "") .. " " .. tostring(running(w2.pid) and w2.pid or ""))
    assert.truthy(refused(port, 1))
    local out, _, code, how = proc:finish()
    assert.are.equal("", out)
    assert.are.same({ "signal", 9 }, { how, code })
  end)
end)
