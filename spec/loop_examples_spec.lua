-- The loop examples run for real, each server in a child process on a free
-- port (under `timeout`, killed at the end): echo (with Node's originals both
-- ways), chat, http_hello and redis_lite, talked to by raw clients.
local csock = require "csock"
local H = require "helper"

local NODE = "/usr/bin/node"

-- Starts `examples/<name> <port>` (a .lua file, or a .js one under Node) and
-- waits for its "... on port N" line; returns the server object (H.start_bg).
local function start(name, port)
  local cmd
  if name:match("%.js$") then
    cmd = NODE .. " " .. H.ROOT .. "/examples/" .. name .. " " .. port
  else
    cmd = H.lua_cmd(H.ROOT .. "/examples/" .. name .. " " .. port)
  end
  local srv = H.start_bg(cmd, 30)
  srv.first = srv:line()
  return srv
end

-- Runs a client command to the end (under `timeout 10`): output, exit code.
local function run_client(cmd)
  local p = assert(io.popen("timeout 10 " .. cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function client(port)
  local c = csock.socket()
  c:settimeout(H.TIMEOUT)
  assert(c:connect("127.0.0.1", port))
  return c
end

describe("echo_server.lua", function()
  it("answers echo_client.lua; both print Node's lines", function()
    local port = H.free_port()
    local srv = start("echo_server.lua", port)
    assert.are.equal("Server on port " .. port, srv.first)
    local out, code = run_client(H.lua_cmd(H.ROOT .. "/examples/echo_client.lua " .. port))
    assert.are.equal("Connected\nReply: Echo: Hello Server!\n", out)
    assert.are.equal(0, code)
    local lines = { srv:line(), srv:line(), srv:line() }
    srv:kill()
    assert.are.same({ "Client connected", "Received: Hello Server!", "Client disconnected" }, lines)
  end)

  it("answers Node's echo_client.js", function()
    local port = H.free_port()
    local srv = start("echo_server.lua", port)
    assert.are.equal("Server on port " .. port, srv.first)
    local out, code = run_client(NODE .. " " .. H.ROOT .. "/examples/node/echo_client.js " .. port)
    assert.are.equal("Connected\nReply: Echo: Hello Server!\n", out)
    assert.are.equal(0, code)
    local lines = { srv:line(), srv:line(), srv:line() }
    srv:kill()
    assert.are.same({ "Client connected", "Received: Hello Server!", "Client disconnected" }, lines)
  end)

  it("serves several clients at once", function()
    local port = H.free_port()
    local srv = start("echo_server.lua", port)
    local a, b = client(port), client(port)
    assert(b:send("from b"))
    assert.are.equal("Echo: from b", b:recv())
    assert(a:send("from a"))
    assert.are.equal("Echo: from a", a:recv())
    a:close(); b:close()
    srv:kill()
  end)
end)

describe("Node's echo_server.js", function()
  it("answers echo_client.lua as it answers echo_client.js", function()
    local port = H.free_port()
    local srv = start("node/echo_server.js", port)
    assert.are.equal("Server on port " .. port, srv.first)
    local out, code = run_client(H.lua_cmd(H.ROOT .. "/examples/echo_client.lua " .. port))
    assert.are.equal("Connected\nReply: Echo: Hello Server!\n", out)
    assert.are.equal(0, code)
    local lines = { srv:line(), srv:line(), srv:line() }
    out, code = run_client(NODE .. " " .. H.ROOT .. "/examples/node/echo_client.js " .. port)
    assert.are.equal("Connected\nReply: Echo: Hello Server!\n", out)
    assert.are.equal(0, code)
    local node_lines = { srv:line(), srv:line(), srv:line() }
    srv:kill()
    assert.are.same({ "Client connected", "Received: Hello Server!", "Client disconnected" }, lines)
    assert.are.same(lines, node_lines)
  end)
end)

describe("chat_server.lua", function()
  it("sends each line to every other client as 'host:port: line', not back to its sender", function()
    local port = H.free_port()
    local srv = start("chat_server.lua", port)
    assert.are.equal("Chat on port " .. port, srv.first)
    local names, cs = {}, {}
    for i = 1, 3 do
      cs[i] = client(port)
      local host, p = cs[i]:getsockname()
      names[i] = host .. ":" .. p
      assert.are.equal(names[i] .. " joined", srv:line()) -- registered before anyone speaks
    end
    assert(cs[1]:write("hello from one\n"))
    assert.are.equal(names[1] .. ": hello from one", cs[2]:read("l"))
    assert.are.equal(names[1] .. ": hello from one", cs[3]:read("l"))
    assert(cs[3]:write("three here\n", "and again\n"))
    for _, i in ipairs { 1, 2 } do
      assert.are.equal(names[3] .. ": three here", cs[i]:read("l"))
      assert.are.equal(names[3] .. ": and again", cs[i]:read("l"))
    end
    -- nobody got their own lines back, nor anything else
    for i = 1, 3 do
      cs[i]:settimeout(0.1)
      assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, table.pack(cs[i]:read("l")))
    end
    cs[2]:close()
    assert.are.equal(names[2] .. " left", srv:line())
    cs[1]:settimeout(H.TIMEOUT)
    assert(cs[3]:write("after two left\n"))
    assert.are.equal(names[3] .. ": after two left", cs[1]:read("l"))
    cs[1]:close(); cs[3]:close()
    srv:kill()
  end)
end)

-- Reads one HTTP response: status line, headers (lower-cased names), body.
local function read_response(c)
  local status = c:read("L")
  if not status then return nil end
  assert.are.equal("\r\n", status:sub(-2))
  local headers = {}
  while true do
    local line = assert(c:read("L"))
    assert.are.equal("\r\n", line:sub(-2))
    if line == "\r\n" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*\r\n$")
    headers[name:lower()] = value
  end
  local body = c:read(tonumber(headers["content-length"]))
  return { status = status:sub(1, -3), headers = headers, body = body }
end

local HELLO = { status = "HTTP/1.1 200 OK",
                headers = { ["content-type"] = "text/plain", ["content-length"] = "14" },
                body = "Hello, World!\n" }

describe("http_hello.lua", function()
  it("answers 3 keep-alive requests on one connection, then closes on 'Connection: close'", function()
    local port = H.free_port()
    local srv = start("http_hello.lua", port)
    assert.are.equal("HTTP on port " .. port, srv.first)
    local c = client(port)
    for i = 1, 3 do
      assert(c:write("GET /" .. i .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: spec\r\n\r\n"))
      assert.are.same(HELLO, read_response(c))
    end
    assert(c:write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    assert.are.same(HELLO, read_response(c))
    assert.are.same({ n = 2, nil, "closed" }, table.pack(c:read(1)))
    c:close()
    srv:kill()
  end)

  it("answers pipelined requests, skipping request bodies by Content-Length", function()
    local port = H.free_port()
    local srv = start("http_hello.lua", port)
    local c = client(port)
    assert(c:write(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:11\r\nConnection: keep-alive\r\n\r\nhello=world",
      "GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /c HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\nConnection: Close\r\n\r\nabc"))
    for _ = 1, 3 do assert.are.same(HELLO, read_response(c)) end
    assert.are.same({ n = 2, nil, "closed" }, table.pack(c:read(1)))
    c:close()
    srv:kill()
  end)
end)

describe("tcp_proxy.lua", function()
  it("relays 4 MiB both ways to an echo server, and ends each side's stream in turn", function()
    local target = assert(csock.listen("127.0.0.1", 0, function(conn) conn:copyto(conn) end))
    local _, target_port = target:getsockname()
    local port = H.free_port()
    local proxy = H.start_bg(H.lua_cmd(H.ROOT .. "/examples/tcp_proxy.lua " .. port ..
                                       " 127.0.0.1 " .. target_port), 30)
    assert.are.equal(("Proxy on port %d to 127.0.0.1:%d"):format(port, target_port), proxy:line())
    local data = H.pattern(4 * 1048576 + 7, 11)
    local got, rest
    csock.run(function()
      local c = assert(csock.connect("127.0.0.1", port, { timeout = H.TIMEOUT }))
      local reader = csock.spawn(function()
        local parts = {}
        for chunk in c:chunks() do parts[#parts + 1] = chunk end
        return table.concat(parts)
      end)
      assert(c:write(data))
      assert(c:shutdown("w")) -- the proxy passes it on; the echo ends; so does the proxy
      got = reader:join()
      rest = table.pack(c:read(1))
      c:close()
      target:close()
    end)
    proxy:kill()
    assert.are.equal(#data, #got)
    assert.is_nil(H.first_diff(got, data))
    assert.are.same({ n = 2, nil, "closed" }, rest)
  end)

  it("closes the client's connection when the target refuses", function()
    local port, dead = H.free_port(), H.free_port()
    local proxy = H.start_bg(H.lua_cmd(H.ROOT .. "/examples/tcp_proxy.lua " .. port ..
                                       " 127.0.0.1 " .. dead), 30)
    proxy:line()
    local c = client(port)
    assert.are.same({ n = 2, nil, "closed" }, table.pack(c:read(1)))
    c:close()
    proxy:kill()
  end)
end)

-- RESP helpers: a multibulk command, and one reply read off the socket.
local function command(...)
  local t = { "*" .. select("#", ...) .. "\r\n" }
  for i = 1, select("#", ...) do
    local a = tostring((select(i, ...)))
    t[#t + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(t)
end

local function reply(c)
  local line = assert(c:read("L"))
  assert.are.equal("\r\n", line:sub(-2))
  line = line:sub(1, -3)
  local kind = line:sub(1, 1)
  if kind == "$" then
    local n = tonumber(line:sub(2))
    if n < 0 then return "$-1" end
    local data = c:read(n)
    assert.are.equal("\r\n", c:read(2))
    return "$" .. data
  end
  return line
end

describe("redis_lite.lua", function()
  local port, srv
  setup(function()
    port = H.free_port()
    srv = start("redis_lite.lua", port)
  end)
  teardown(function() srv:kill() end)

  it("starts with its banner", function()
    assert.are.equal("redis_lite on port " .. port, srv.first)
  end)

  it("answers an inline PING with +PONG, and PING msg with the message", function()
    local c = client(port)
    assert(c:write("PING\r\n"))
    assert.are.equal("+PONG", reply(c))
    assert(c:write("ping hello\r\n"))
    assert.are.equal("$hello", reply(c))
    assert(c:write(command("PING")))
    assert.are.equal("+PONG", reply(c))
    c:close()
  end)

  it("does SET, GET, DEL and ECHO in multibulk, with binary-safe values", function()
    local c = client(port)
    local value = "a b\r\nc\0d"
    assert(c:write(command("SET", "key1", value)))
    assert.are.equal("+OK", reply(c))
    assert(c:write(command("GET", "key1")))
    assert.are.equal("$" .. value, reply(c))
    assert(c:write(command("ECHO", "echo me")))
    assert.are.equal("$echo me", reply(c))
    assert(c:write(command("SET", "key2", "2")))
    assert.are.equal("+OK", reply(c))
    assert(c:write(command("DEL", "key1", "key2", "nokey")))
    assert.are.equal(":2", reply(c))
    assert(c:write(command("GET", "key1")))
    assert.are.equal("$-1", reply(c))
    assert(c:write(command("CONFIG", "GET", "save")))
    assert.are.equal("*0", reply(c))
    c:close()
  end)

  it("answers GET of a missing key with $-1, and unknown commands with -ERR (named as sent)", function()
    local c = client(port)
    assert(c:write(command("GET", "never-set")))
    assert.are.equal("$-1", reply(c))
    assert(c:write(command("FLY", "away")))
    assert.are.equal("-ERR unknown command 'FLY'", reply(c))
    assert(c:write("nosuch\r\n"))
    assert.are.equal("-ERR unknown command 'nosuch'", reply(c))
    assert(c:write(command("GET")))
    assert.are.equal("-ERR wrong number of arguments for 'GET'", reply(c))
    assert(c:write(command("get")))
    assert.are.equal("-ERR wrong number of arguments for 'get'", reply(c))
    assert(c:write("*1\r\n:1\r\n"))
    assert.are.equal("-ERR Protocol error", reply(c))
    assert.is_nil(c:read("l")) -- and the server closed the connection
    c:close()
  end)

  it("answers a pipeline of 100 commands sent in one write with 100 replies in order", function()
    local c = client(port)
    local cmds, want = {}, {}
    for i = 1, 100 do
      if i % 4 == 1 then
        cmds[i], want[i] = command("SET", "p" .. i, "v" .. i), "+OK"
      elseif i % 4 == 2 then
        cmds[i], want[i] = command("GET", "p" .. (i - 1)), "$v" .. (i - 1)
      elseif i % 4 == 3 then
        cmds[i], want[i] = "PING\r\n", "+PONG"
      else
        cmds[i], want[i] = command("ECHO", "e" .. i), "$e" .. i
      end
    end
    assert(c:write(table.concat(cmds)))
    local got = {}
    for i = 1, 100 do got[i] = reply(c) end
    assert.are.same(want, got)
    c:settimeout(0.1)
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, table.pack(c:read(1)))
    c:close()
  end)

  it("keeps data between connections and serves several clients", function()
    local a, b = client(port), client(port)
    assert(a:write(command("SET", "shared", "from a")))
    assert.are.equal("+OK", reply(a))
    assert(b:write(command("GET", "shared")))
    assert.are.equal("$from a", reply(b))
    a:close(); b:close()
  end)
end)
