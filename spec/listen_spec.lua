-- csock.listen: a task per connection, server.connections, handler errors,
-- maxconnections, idle timeouts, reuseport, bad arguments, closing the
-- server, accept errors (EMFILE), and 5,000 concurrent echo connections.
local csock = require "csock"
local H = require "helper"

local ETIMEDOUT = csock.errno.ETIMEDOUT

-- An echo server of this process: every line comes back as "re:" .. line.
local function echo_server(opts)
  local server = assert(csock.listen("127.0.0.1", 0, function(conn)
    for line in conn:lines() do conn:write("re:", line, "\n") end
  end, opts))
  local _, port = server:getsockname()
  return server, port
end

-- A client socket (blocking outside tasks, suspending inside) with a timeout.
local function client(port, timeout)
  local c = csock.socket()
  c:settimeout(timeout or H.TIMEOUT)
  assert(c:connect("127.0.0.1", port))
  return c
end

-- In a task: polls pred() every 10 ms for up to 2 s; returns its last result.
local function wait_for(pred)
  for _ = 1, 200 do
    if pred() then return true end
    csock.sleep(0.01)
  end
  return pred()
end

-- Writes `code` to a temporary file; returns its name.
local function lua_file(code)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(code)
  f:close()
  return name
end

describe("csock.listen", function()
  it("on port 0 picks a free port that getsockname reports", function()
    local server = assert(csock.listen("127.0.0.1", 0, function() end))
    local host, port = server:getsockname()
    assert.are.equal("127.0.0.1", host)
    assert.are.equal("integer", math.type(port))
    assert.is_true(port > 0 and port <= 65535)
    assert.are.equal(0, server.connections)
    server:close()
    H.nothing_left()
  end)

  it("accepts on the port it was given, and on ::1", function()
    local port = H.free_port()
    local server = assert(csock.listen("127.0.0.1", port, function() end))
    assert.are.same({ "127.0.0.1", port }, { server:getsockname() })
    server:close()
    local s6 = assert(csock.listen("::1", 0, function(conn, host) conn:write(host, "\n") end))
    local host6, port6 = s6:getsockname()
    assert.are.equal("::1", host6)
    local r = table.pack(csock.run(function()
      local c = csock.socket("inet6")
      c:settimeout(H.TIMEOUT)
      assert(c:connect("::1", port6))
      local line = c:read("l")
      c:close()
      s6:close()
      return line
    end))
    assert.are.same({ n = 1, "::1" }, r)
    H.nothing_left()
  end)

  it("runs the handler in a task per connection with (conn, host, port) of the client", function()
    local seen = {}
    local server = assert(csock.listen("127.0.0.1", 0, function(conn, host, port)
      seen[#seen + 1] = { conn = conn, host = host, port = port }
      conn:write("hi ", port, "\n")
      csock.sleep(0.05) -- the other handlers run meanwhile
      conn:write("bye\n")
    end))
    local _, sport = server:getsockname()
    local got = {}
    local elapsed = H.timed(csock.run, function()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = csock.spawn(function()
          local c = csock.socket()
          c:settimeout(H.TIMEOUT)
          assert(c:bind("127.0.0.1", 0))
          local _, myport = c:getsockname()
          assert(c:connect("127.0.0.1", sport))
          got[i] = { port = myport, first = c:read("l"), second = c:read("l"), eof = table.pack(c:read("l")) }
          c:close()
        end)
      end
      for _, t in ipairs(tasks) do t:join() end
      server:close()
    end)
    assert.are.equal(3, #seen)
    local ports = {}
    for _, s in ipairs(seen) do
      assert.are.equal("127.0.0.1", s.host)
      assert.are.equal("integer", math.type(s.port))
      assert.is_truthy(tostring(s.conn):find("^csock%.socket: inet stream"))
      ports[s.port] = true
    end
    for i = 1, 3 do
      assert.is_true(ports[got[i].port], "no handler saw port " .. got[i].port)
      assert.are.equal("hi " .. got[i].port, got[i].first)
      assert.are.equal("bye", got[i].second)
      assert.are.same({ n = 2, nil, "closed" }, got[i].eof) -- closed when the handler returned
    end
    assert.is_true(elapsed < 0.14, "the handlers did not run concurrently: " .. elapsed)
    H.nothing_left()
  end)

  it("gives a vararg handler and a C function handler the client's address too", function()
    local got = {}
    local vararg = assert(csock.listen("127.0.0.1", 0, function(conn, ...)
      got.vararg = table.pack(...)
      conn:close()
    end))
    local _, vport = vararg:getsockname()
    csock.run(function()
      local c = client(vport)
      assert.are.same({ n = 2, nil, "closed" }, table.pack(c:read("l")))
      c:close()
      vararg:close()
    end)
    assert.are.equal(2, got.vararg.n)
    assert.are.equal("127.0.0.1", got.vararg[1])
    assert.are.equal("integer", math.type(got.vararg[2]))
    -- print is a C function: it writes the socket, the host and the port
    local out, code = H.child([[
      local csock = require "csock"
      local server = assert(csock.listen("127.0.0.1", 0, print))
      local _, port = server:getsockname()
      csock.spawn(function()
        local c = assert(csock.connect("127.0.0.1", port))
        csock.sleep(0.05)
        os.exit(0, true)
      end)
      csock.run()
    ]])
    assert.are.equal(0, code)
    assert.truthy(out:find("^csock%.socket: inet stream fd=%d+ [^\t]*\t127%.0%.0%.1\t%d+\n$"), out)
    H.nothing_left()
  end)

  it("counts the open connections in server.connections", function()
    local server, port = echo_server()
    local counts = {}
    csock.run(function()
      local cs = {}
      for i = 1, 3 do
        cs[i] = client(port)
        assert(cs[i]:write("x\n"))
        assert.are.equal("re:x", cs[i]:read("l"))
      end
      counts[1] = server.connections
      cs[1]:close()
      counts[2] = wait_for(function() return server.connections == 2 end) and server.connections
      cs[2]:close(); cs[3]:close()
      counts[3] = wait_for(function() return server.connections == 0 end) and server.connections
      server:close()
    end)
    assert.are.same({ 3, 2, 0 }, counts)
    H.nothing_left()
  end)

  it("closes the connection when the handler raises, reports the error, and serves the others", function()
    local reports = {}
    csock.onerror(function(err, task) reports[#reports + 1] = { err = err, task = task } end)
    local server = assert(csock.listen("127.0.0.1", 0, function(conn)
      for line in conn:lines() do
        if line == "boom" then error("handler failed on boom") end
        conn:write("re:", line, "\n")
      end
    end))
    local _, port = server:getsockname()
    local r = {}
    csock.run(function()
      local good, bad = client(port), client(port)
      assert(good:write("one\n"))
      r.good1 = good:read("l")
      assert(bad:write("fine\n"))
      r.bad1 = bad:read("l")
      assert(bad:write("boom\n"))
      r.bad2 = table.pack(bad:read("l"))
      assert(good:write("two\n"))
      r.good2 = good:read("l")
      r.connections = server.connections
      good:close(); bad:close()
      server:close()
    end)
    assert.are.same({ good1 = "re:one", bad1 = "re:fine", bad2 = { n = 2, nil, "closed" },
                      good2 = "re:two", connections = 1 }, r)
    assert.are.equal(1, #reports)
    assert.is_truthy(reports[1].err:find("listen_spec%.lua:%d+: handler failed on boom\nstack traceback:\n"),
      reports[1].err)
    assert.are.equal("failed", reports[1].task:status())
    assert.are.same({ n = 2, nil, reports[1].err }, table.pack(reports[1].task:join()))
    assert.are.equal(0, server.connections)
    H.nothing_left()
  end)

  it("with maxconnections = 2 leaves a third client waiting until one closes", function()
    local reports = {}
    csock.onerror(function(err) reports[#reports + 1] = err end)
    local server, port = echo_server({ maxconnections = 2 })
    local r = {}
    csock.run(function()
      local c1, c2, c3 = client(port), client(port), client(port)
      for i, c in ipairs { c1, c2, c3 } do assert(c:write("c" .. i .. "\n")) end
      r.c1 = c1:read("l")
      r.c2 = c2:read("l")
      c3:settimeout(0.2)
      r.c3_waiting = table.pack(c3:read("l"))
      r.during = server.connections
      c1:close()
      c3:settimeout(2)
      local t0 = csock.now()
      r.c3 = c3:read("l")
      r.c3_fast = csock.now() - t0 < 1
      server:close() -- while both slots are taken: the accept task waits for one
      c2:close(); c3:close()
    end)
    assert.are.same({ c1 = "re:c1", c2 = "re:c2", c3_waiting = { n = 3, nil, "timeout", ETIMEDOUT },
                      during = 2, c3 = "re:c3", c3_fast = true }, r)
    assert.are.same({}, reports) -- closing the server is no error in its accept task
    H.nothing_left()
  end)

  it("with maxconnections = math.maxinteger has no limit in practice", function()
    local server, port = echo_server({ maxconnections = math.maxinteger })
    local r = {}
    csock.run(function()
      local c1, c2 = client(port), client(port)
      assert(c1:write("a\n")); assert(c2:write("b\n"))
      r[1], r[2] = c1:read("l"), c2:read("l")
      c1:close(); c2:close()
      server:close()
    end)
    assert.are.same({ "re:a", "re:b" }, r)
    H.nothing_left()
  end)

  it("with timeout closes a connection idle that long, and keeps a busy one", function()
    local server, port = echo_server({ timeout = 0.2 })
    local r = {}
    csock.run(function()
      local idle = csock.spawn(function()
        local c = client(port)
        local t0 = csock.now()
        r.idle = table.pack(c:read("l"))
        r.idle_after = csock.now() - t0
        c:close()
      end)
      local busy = csock.spawn(function()
        local c = client(port)
        local replies = 0
        for i = 1, 6 do -- 0.6 s in all, never 0.2 s quiet
          csock.sleep(0.1)
          assert(c:write(i, "\n"))
          if c:read("l") == "re:" .. i then replies = replies + 1 end
        end
        r.busy = replies
        c:close()
      end)
      idle:join(); busy:join()
      server:close()
    end)
    assert.are.same({ n = 2, nil, "closed" }, r.idle)
    assert.is_true(r.idle_after >= 0.19 and r.idle_after < 1, "closed after " .. r.idle_after)
    assert.are.equal(6, r.busy)
    H.nothing_left()
  end)

  it("with reuseport lets a second server bind the same port; without, it fails", function()
    local a = assert(csock.listen("127.0.0.1", 0, function() end, { reuseport = true }))
    local _, port = a:getsockname()
    local b, err = csock.listen("127.0.0.1", port, function() end, { reuseport = true })
    assert.is_truthy(b, err)
    assert.are.same({ "127.0.0.1", port }, { b:getsockname() })
    local r = table.pack(csock.listen("127.0.0.1", port, function() end))
    assert.are.same({ n = 3, nil, "address already in use", csock.errno.EADDRINUSE }, r)
    a:close(); b:close()
    H.nothing_left()
  end)

  it("with reuseport, both servers serve connections", function()
    local hits = { a = 0, b = 0 }
    local function handler(name)
      return function(conn)
        hits[name] = hits[name] + 1
        conn:write(name, "\n")
      end
    end
    local a = assert(csock.listen("127.0.0.1", 0, handler("a"), { reuseport = true }))
    local _, port = a:getsockname()
    local b = assert(csock.listen("127.0.0.1", port, handler("b"), { reuseport = true }))
    local answers = 0
    csock.run(function()
      for _ = 1, 40 do
        local c = client(port)
        local who = c:read("l")
        if who == "a" or who == "b" then answers = answers + 1 end
        c:close()
      end
      a:close(); b:close()
    end)
    assert.are.equal(40, answers)
    assert.are.equal(40, hits.a + hits.b)
    assert.is_true(hits.a > 0 and hits.b > 0, "a " .. hits.a .. ", b " .. hits.b)
    H.nothing_left()
  end)

  it("returns nil, message, errno for a port in use (no reuseport) and leaves no task", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    local r = table.pack(csock.listen("127.0.0.1", port, function() end))
    assert.are.same({ n = 3, nil, "address already in use", csock.errno.EADDRINUSE }, r)
    l:close()
    H.nothing_left()
  end)

  it("server:close() ends the accept task, so run returns, and the port refuses", function()
    local server, port = echo_server()
    local elapsed = H.timed(csock.run, function()
      csock.sleep(0.02)
      server:close()
    end)
    assert.is_true(elapsed < 1, "elapsed " .. elapsed)
    H.nothing_left()
    local c = csock.socket()
    c:settimeout(H.TIMEOUT)
    assert.are.same({ n = 3, nil, "connection refused", csock.errno.ECONNREFUSED },
      table.pack(c:connect("127.0.0.1", port)))
    c:close()
  end)

  it("server:close() from a handler ends the server after that connection", function()
    local server
    server = assert(csock.listen("127.0.0.1", 0, function(conn)
      conn:write("last one\n")
      server:close()
    end))
    local _, port = server:getsockname()
    local r = table.pack(csock.run(function()
      local c = client(port)
      local line = c:read("l")
      c:close()
      return line
    end))
    assert.are.same({ n = 1, "last one" }, r)
    H.nothing_left()
  end)

  it("serves its open connections to the end after the server is closed and collected", function()
    local server, port = echo_server()
    local r = {}
    csock.run(function()
      local c = client(port)
      assert(c:write("one\n"))
      r[1] = c:read("l")
      server:close()
      server = nil
      collectgarbage(); collectgarbage()
      assert(c:write("two\n"))
      r[2] = c:read("l")
      c:close()
    end)
    assert.are.same({ "re:one", "re:two" }, r)
    H.nothing_left()
  end)

  it("keeps a server its script holds no reference to in csock.servers while it accepts", function()
    local port
    do
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        conn:write("still here\n")
      end))
      port = select(2, server:getsockname())
    end
    collectgarbage(); collectgarbage()
    local found
    for server in pairs(csock.servers) do
      if select(2, server:getsockname()) == port then found = server end
    end
    assert.truthy(found, "the server left csock.servers")
    local line = csock.run(function()
      local c = client(port)
      local l = c:read("l")
      c:close()
      found:close()
      return l
    end)
    assert.are.equal("still here", line)
    -- closed, its accept task ended: it goes like any garbage
    local weak = setmetatable({ found }, { __mode = "v" })
    found = nil
    collectgarbage(); collectgarbage()
    assert.is_nil(weak[1])
    H.nothing_left()
  end)

  it("exits cleanly when the Lua state is closed under open connections", function()
    -- Handlers parked in reads, a server full (maxconnections), output not
    -- sent yet: lua_close collects the connections with their tasks.
    local out, code = H.child([[
      local csock = require "csock"
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        conn:write("hello\n")
        conn:read("l")
      end, { maxconnections = 2, timeout = 30 }))
      local _, port = server:getsockname()
      local clients = {}
      csock.spawn(function()
        for i = 1, 3 do clients[i] = assert(csock.connect("127.0.0.1", port)) end
        print(clients[1]:read("l"), clients[2]:read("l"), server.connections)
        os.exit(0, true)
      end)
      csock.run()
    ]])
    assert.are.equal("hello\thello\t2\n", out)
    assert.are.equal(0, code)
  end)

  it("raises for bad arguments", function()
    local h = function() end
    local cases = {
      { { 5, 0, h }, "bad argument #1 to 'listen' (string expected for host)" },
      { { "127.0.0.1", -1, h }, "bad argument #2 to 'listen' (port out of range)" },
      { { "127.0.0.1", 65536, h }, "bad argument #2 to 'listen' (port out of range)" },
      { { "127.0.0.1", 1.5, h }, "bad argument #2 to 'listen' (port out of range)" },
      { { "127.0.0.1", "80", h }, "bad argument #2 to 'listen' (port out of range)" },
      { { "127.0.0.1", 0, nil }, "bad argument #3 to 'listen' (function expected for handler)" },
      { { "127.0.0.1", 0, "h" }, "bad argument #3 to 'listen' (function expected for handler)" },
      { { "127.0.0.1", 0, h, 5 }, "bad argument #4 to 'listen' (table expected for options)" },
      { { "127.0.0.1", 0, h, { backlog = -1 } }, "bad argument #4 to 'listen' (option 'backlog' must be an integer from 0 to 65535)" },
      { { "127.0.0.1", 0, h, { backlog = 1.5 } }, "bad argument #4 to 'listen' (option 'backlog' must be an integer from 0 to 65535)" },
      { { "127.0.0.1", 0, h, { backlog = 65536 } }, "bad argument #4 to 'listen' (option 'backlog' must be an integer from 0 to 65535)" },
      { { "127.0.0.1", 0, h, { reuseport = 1 } }, "bad argument #4 to 'listen' (option 'reuseport' must be a boolean)" },
      { { "127.0.0.1", 0, h, { maxconnections = 0 } }, "bad argument #4 to 'listen' (option 'maxconnections' must be an integer from 1 to 9223372036854775807)" },
      { { "127.0.0.1", 0, h, { timeout = -1 } }, "bad argument #4 to 'listen' (option 'timeout' must be a non-negative number)" },
      { { "127.0.0.1", 0, h, { timeout = 0 / 0 } }, "bad argument #4 to 'listen' (option 'timeout' must be a non-negative number)" },
      { { "127.0.0.1", 0, h, { timeout = "1" } }, "bad argument #4 to 'listen' (option 'timeout' must be a non-negative number)" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(csock.listen, table.unpack(case[1], 1, 4))
      assert.is_false(ok, case[2])
      assert.is_truthy(tostring(err):find(case[2], 1, true), "expected " .. case[2] .. ", got " .. tostring(err))
    end
    H.nothing_left()
  end)

  it("blames the caller's line for bad arguments, options included", function()
    local h = function() end
    for _, opts in ipairs { false, { backlog = -1 }, { maxconnections = 0 }, { timeout = -1 } } do
      local ok, err = pcall(function()
        local server -- not a tail call: the caller's frame must stay
        if opts then server = csock.listen("127.0.0.1", 0, h, opts)
        else server = csock.listen("127.0.0.1", -1, h) end
        return server
      end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("^[^\n]*listen_spec%.lua:%d+: bad argument"), tostring(err))
    end
    H.nothing_left()
  end)

  it("keeps the listener after EMFILE: connections past the fd limit are served later", function()
    -- The server runs with `ulimit -n 40`; 60 clients connect at once, then
    -- each in turn sends a line, reads its echo and closes.
    local file = lua_file([[
      local csock = require "csock"
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        for line in conn:lines() do conn:write("re:", line, "\n") end
      end))
      local _, port = server:getsockname()
      print(port)
      csock.run()
    ]])
    local srv = H.start_bg("sh -c " .. H.shell_quote("ulimit -n 40; exec " .. H.lua_cmd(file)), 30)
    local port = tonumber(srv:line())
    assert.is_truthy(port, "the server did not start")
    local cs = {}
    for i = 1, 60 do cs[i] = client(port) end
    local answered = 0
    for i = 1, 60 do
      assert(cs[i]:write("n" .. i .. "\n"))
      if cs[i]:read("l") == "re:n" .. i then answered = answered + 1 end
      cs[i]:close()
    end
    local out = srv:kill()
    os.remove(file)
    assert.are.equal(60, answered)
    assert.are.equal("", out)
  end)
end)

describe("5,000 concurrent connections", function()
  it("a csock.listen echo server and 5,000 client tasks in another process all get their echo", function()
    local limit = tonumber(io.popen("ulimit -n"):read("l")) or math.huge
    if limit < 11000 then
      pending("ulimit -n is " .. limit .. ": 5,000 connections need at least 11000 (server and client)")
      return
    end
    local server_file = lua_file([[
      local csock = require "csock"
      local server = assert(csock.listen("127.0.0.1", 0, function(conn)
        for line in conn:lines() do conn:write(line, "\n") end
      end, { backlog = 4096 }))
      local _, port = server:getsockname()
      print(port)
      csock.run()
    ]])
    local srv = H.start_bg(H.lua_cmd(server_file), 60)
    local port = tonumber(srv:line())
    assert.is_truthy(port, "the server did not start")
    local t0 = csock.now()
    local out, code = H.child([[
      local csock = require "csock"
      local port, N = tonumber(arg[1]), tonumber(arg[2])
      local connected, echoed, failed = 0, 0, {}
      local all_in = csock.cond()
      local max_open, open = 0, 0
      csock.run(function()
        local tasks = {}
        for i = 1, N do
          tasks[i] = csock.spawn(function()
            local c, err = csock.connect("127.0.0.1", port, { timeout = 40 })
            if not c then failed[#failed + 1] = "connect " .. tostring(err) return end
            open = open + 1
            if open > max_open then max_open = open end
            connected = connected + 1
            -- every connection is open before any sends: all 5,000 at once
            if connected == N then all_in:broadcast() else all_in:wait(40) end
            local line = ("client %d says %s"):format(i, ("x"):rep(i % 50))
            c:write(line, "\n")
            local back, rerr = c:read("l")
            if back == line then echoed = echoed + 1
            else failed[#failed + 1] = "echo " .. tostring(back or rerr) end
            c:close()
            open = open - 1
          end)
        end
        for _, t in ipairs(tasks) do t:join() end
      end)
      print(echoed, max_open, #failed, failed[1])
    ]], port, 5000)
    local elapsed = csock.now() - t0
    local server_out = srv:kill()
    os.remove(server_file)
    assert.are.equal("5000\t5000\t0\tnil\n", out, "server said: " .. server_out)
    assert.are.equal(0, code)
    assert.is_true(elapsed < 60, "elapsed " .. elapsed)
  end)
end)
