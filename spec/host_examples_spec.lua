-- The examples under bin/csock (one-shot pairs as two csock processes, loop servers until
-- SIGTERM), and the embedding example, build/examples/embed.
-- Every child runs under `timeout`; servers take free ports. What the host specs share is in
-- spec/host_helper.lua. Run alone from the repo root (busted reads .busted there):
-- busted spec/host_examples_spec.lua
local H = require "helper"
local X = require "host_helper"

local q = H.shell_quote
local BIN, EMBED, readfile, writefile, tmplua = X.BIN, X.EMBED, X.readfile, X.writefile, X.tmplua
local run, start, kill, connect, refused = X.run, X.start, X.kill, X.connect, X.refused
local pid_of = X.pid_of

-- Every example runs under the executable as under lua5.4 (examples_spec.lua runs them with
-- lua5.4): one-shot pairs as two csock processes, loop servers until SIGTERM.
describe("examples under bin/csock", function()
  -- Runs the client again while it fails only because the server is not up yet.
  local function client(args)
    local out, err, code
    for _ = 1, 100 do
      out, err, code = run(args)
      local lower = ((out or "") .. (err or "")):lower()
      if code == 0 or not (lower:find("connection refused", 1, true) or
                           lower:find("no such file or directory", 1, true)) then break end
      H.sleep(0.05)
    end
    return out, err, code
  end

  -- A connection to a server that is still starting.
  local function connect_when_up(port)
    local c
    H.eventually(function() c = connect(port) return c end, 5)
    return assert(c, "nothing listens on " .. port)
  end

  -- Starts a loop server, lets fn(port, proc) talk to it (proc:line() reads the server's
  -- output as it comes), stops it with SIGTERM; returns the rest of its output.
  local function with_server(name, fn)
    local port = H.free_port()
    local proc = start("examples/" .. name .. ".lua " .. port)
    fn(port, proc)
    -- the server's pid: the csock child of `timeout`
    kill("TERM", pid_of(BIN .. " examples/" .. name .. ".lua " .. port))
    local out, err, code = proc:finish()
    assert.are.equal("", err)
    assert.are.equal(0, code)
    return out, port
  end

  it("each example's header says how to run it with bin/csock", function()
    local p = assert(io.popen("ls examples/*.lua"))
    local n = 0
    for path in p:lines() do
      local name = path:match("examples/(.-)%.lua$")
      local header = {}
      for line in io.lines(path) do
        if not line:find("^%-%-") then break end
        header[#header + 1] = line
      end
      assert.truthy(table.concat(header, "\n"):find("bin/csock examples/" .. name .. ".lua", 1, true),
        path .. " header:\n" .. table.concat(header, "\n"))
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 12, n .. " examples")
  end)

  it("tcp_server.lua and tcp_client.lua", function()
    local port = H.free_port()
    local server = start("examples/tcp_server.lua " .. port)
    local out, err, code = client("examples/tcp_client.lua " .. port)
    assert.are.same({ "Received: Hello, Client!\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on 127.0.0.1:" .. port .. "\nReceived: Hello, Server!\n", "", 0 }, { sout, serr, scode })
  end)

  it("udp_server.lua and udp_client.lua", function()
    local port = H.free_port("inet")
    local server = start("examples/udp_server.lua " .. port)
    local out, err, code = client("examples/udp_client.lua " .. port)
    assert.are.same({ "Received: HELLO, UDP\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on udp 127.0.0.1:" .. port .. "\nReceived: hello, udp\n", "", 0 }, { sout, serr, scode })
  end)

  it("unix_server.lua and unix_client.lua", function()
    local path = H.tmpname()
    local server = start("examples/unix_server.lua " .. q(path))
    local out, err, code = client("examples/unix_client.lua " .. q(path))
    assert.are.same({ "Received: Hello, Client! You sent 14 bytes\n", "", 0 }, { out, err, code })
    local sout, serr, scode = server:finish()
    assert.are.same({ "Listening on " .. path .. "\nReceived: Hello, Server!\n", "", 0 }, { sout, serr, scode })
  end)

  it("demo.lua (which runs the pair with the same interpreter)", function()
    local out, err, code = run("examples/demo.lua")
    assert.truthy(out:find("$ " .. BIN .. " examples/tcp_server.lua ", 1, true), out)
    assert.truthy(out:find("[client] Received: Hello, Client!\n", 1, true), out)
    assert.truthy(out:find("[server] Received: Hello, Server!\n", 1, true), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("echo_server.lua and echo_client.lua", function()
    local seen = {}
    local out, port = with_server("echo_server", function(port, proc)
      connect_when_up(port):close()
      -- The server logs the probe's whole life before the client comes: connecting only put
      -- the probe in the kernel's backlog, and a server that finds it there with the client's
      -- connection accepts both in one turn and serves them at once, their lines interleaved.
      for i = 1, 3 do seen[i] = tostring(proc:line()) end
      local cout, cerr, ccode = run("examples/echo_client.lua " .. port)
      assert.are.same({ "Connected\nReply: Echo: Hello Server!\n", "", 0 }, { cout, cerr, ccode })
    end)
    assert.are.equal("Server on port " .. port .. "\nClient connected\nClient disconnected\n" ..
      "Client connected\nReceived: Hello Server!\nClient disconnected\n", table.concat(seen, "\n") .. "\n" .. out)
  end)

  it("chat_server.lua passes a line to the other client", function()
    local names = {}
    local out, port = with_server("chat_server", function(port)
      local a = connect_when_up(port)
      H.sleep(0.1)
      local b = assert(connect(port))
      H.sleep(0.1)
      for i, c in ipairs({ a, b }) do
        local host, p = c:getsockname()
        names[i] = host .. ":" .. p
      end
      a:write("hi all\n")
      assert.are.equal(names[1] .. ": hi all", b:read("l"))
      a:close()
      H.sleep(0.1)
      b:close()
      H.sleep(0.1)
    end)
    assert.are.equal("Chat on port " .. port .. "\n" .. names[1] .. " joined\n" .. names[2] .. " joined\n" ..
      names[1] .. " left\n" .. names[2] .. " left\n", out)
  end)

  it("http_hello.lua answers a request", function()
    local out, port = with_server("http_hello", function(port)
      local c = connect_when_up(port)
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, World!\n"
      assert.are.equal(response .. response, c:read("a"))
      c:close()
    end)
    assert.are.equal("HTTP on port " .. port .. "\n", out)
  end)

  it("redis_lite.lua answers PING, SET and GET", function()
    local out, port = with_server("redis_lite", function(port)
      local c = connect_when_up(port)
      c:write("PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\nGET k\r\n")
      assert.are.equal("+PONG\r\n+OK\r\n$2\r\nv1\r\n", c:read(7 + 5 + 8))
      c:close()
    end)
    assert.are.equal("redis_lite on port " .. port .. "\n", out)
  end)
end)

describe("the embed example (examples/embed)", function()
  it("two states, one port each, own ids; QUIT stops each; the process exits 0", function()
    assert.truthy(readfile(EMBED), EMBED .. " is missing: run `make examples`")
    local proc = start("-n 2", EMBED)
    local ports = {}
    for i = 1, 2 do
      local line = proc:line()
      local n, port = tostring(line):match("^state(%d) listening on 127%.0%.0%.1:(%d+)$")
      assert.are.equal(tostring(i), n, tostring(line))
      ports[i] = math.tointeger(tonumber(port))
    end
    assert.are_not.equal(ports[1], ports[2])
    local function talk(i, lines)
      local c = assert(connect(ports[i]))
      local got = {}
      for _, l in ipairs(lines) do
        c:write(l, "\n")
        got[#got + 1] = c:read("l")
      end
      c:close()
      return got
    end
    assert.are.same({ "1 state1 HELLO", "2 state1 WORLD" }, talk(1, { "hello", "world" }))
    assert.are.same({ "1 state2 HELLO" }, talk(2, { "hello" }))
    assert.are.same({ "3 state1 AGAIN" }, talk(1, { "again" }))
    -- A client still connected when its state closes: the connection
    -- (its handler parked in a read) ends with the state, not the process.
    local idle = assert(connect(ports[1]))
    idle:write("idle\n")
    assert.are.equal("4 state1 IDLE", idle:read("l"))
    assert.are.same({ "bye" }, talk(1, { "QUIT" }))
    assert.are.equal("state1 stopped", proc:line())
    assert.truthy(refused(ports[1], 1))
    idle:settimeout(5)
    local line, err = idle:read("l")
    assert.are.same({ nil, "closed" }, { line, err })
    idle:close()
    assert.are.same({ "2 state2 STILL HERE" }, talk(2, { "still here" }))
    assert.are.same({ "bye" }, talk(2, { "QUIT" }))
    local out, err, code = proc:finish()
    assert.are.equal("state2 stopped\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("a state's task error goes to the host's error hook", function()
    assert.truthy(readfile(EMBED), EMBED .. " is missing: run `make examples`")
    local path = writefile(tmplua(), [[
csock.spawn(function() error("hook me") end)
csock.timer(0.05, function() host.quit() end)
return 0
]])
    local proc = start(q(path), EMBED)
    local out, err, code = proc:finish()
    assert.are.equal("state1 listening on 127.0.0.1:0\nstate1 stopped\n", out)
    assert.truthy(err:find("^%[state 1%] task failed: " .. path:gsub("%p", "%%%0") .. ":1: hook me\nstack traceback:\n"), err)
    assert.are.equal(0, code)
  end)
end)
