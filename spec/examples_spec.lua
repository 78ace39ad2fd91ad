-- The examples run for real: each server and its client as separate processes on a free port,
-- with their exact output checked, and the TCP pair against its Python original both ways.
-- Run from the repo root (busted reads .busted there): busted spec/examples_spec.lua
local csock = require "csock"

-- CSOCK_SPEC_CPATH (set by `make asan`) points the children at another build of the module.
local CPATH = os.getenv("CSOCK_SPEC_CPATH") or "./?.so"
local LUA = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='" .. CPATH .. ";;' timeout 10 lua5.4 examples/"
local PYTHON = "timeout 10 python3 examples/python/"

local function free_port(kind)
  local s <close> = csock.socket("inet", kind)
  assert(s:bind("127.0.0.1", 0))
  local _, port = assert(s:getsockname())
  return port
end

-- What a client prints when its server is not bound or not listening yet.
local function not_ready(output)
  output = output:lower()
  return output:find("connection refused", 1, true) or output:find("no such file or directory", 1, true)
end

-- Starts the server in the background, then runs the client, again while it fails only because
-- the server is not up yet (at most 50 tries, 0.05 s apart). The client is its own probe: a
-- connection made just to test readiness would be the one client the server accepts.
local function run_pair(server_cmd, client_cmd)
  local server = assert(io.popen(server_cmd .. " 2>&1", "r"))
  local client = {}
  for _ = 1, 50 do
    local p = assert(io.popen(client_cmd .. " 2>&1", "r"))
    client.out = p:read("a")
    client.ok, client.how, client.code = p:close()
    if client.ok or not not_ready(client.out) then break end
    csock.select({}, {}, 0.05)
  end
  local result = { out = server:read("a") }
  result.ok, result.how, result.code = server:close()
  return result, client
end

local function check(proc, expected)
  assert.are.equal(expected, proc.out)
  assert.is_true(proc.ok, "exit: " .. tostring(proc.how) .. " " .. tostring(proc.code))
end

local function tcp_server_says(port)
  return "Listening on 127.0.0.1:" .. port .. "\nReceived: Hello, Server!\n"
end
local TCP_CLIENT_SAYS = "Received: Hello, Client!\n"

local function nonblank_lines(path)
  local n = 0
  for line in io.lines(path) do
    if line:find("%S") then n = n + 1 end
  end
  return n
end

local function require_python()
  assert(os.execute("python3 -c '' 2>/dev/null"), "python3 is needed for the interop specs")
end

describe("examples", function()
  it("tcp: the Lua server and the Lua client", function()
    local port = free_port("stream")
    local server, client = run_pair(LUA .. "tcp_server.lua " .. port, LUA .. "tcp_client.lua " .. port)
    check(client, TCP_CLIENT_SAYS)
    check(server, tcp_server_says(port))
  end)

  it("tcp interop: the Lua server and the Python client", function()
    require_python()
    local port = free_port("stream")
    local server, client = run_pair(LUA .. "tcp_server.lua " .. port, PYTHON .. "tcp_client.py " .. port)
    check(client, TCP_CLIENT_SAYS)
    check(server, tcp_server_says(port))
  end)

  it("tcp interop: the Python server and the Lua client", function()
    require_python()
    local port = free_port("stream")
    local server, client = run_pair(PYTHON .. "tcp_server.py " .. port, LUA .. "tcp_client.lua " .. port)
    check(client, TCP_CLIENT_SAYS)
    check(server, tcp_server_says(port))
  end)

  it("tcp: the Python originals print what the Lua versions print", function()
    require_python()
    local port = free_port("stream")
    local server, client = run_pair(PYTHON .. "tcp_server.py " .. port, PYTHON .. "tcp_client.py " .. port)
    check(client, TCP_CLIENT_SAYS)
    check(server, tcp_server_says(port))
  end)

  it("udp: the server echoes one datagram upper-cased", function()
    local port = free_port("dgram")
    local server, client = run_pair(LUA .. "udp_server.lua " .. port, LUA .. "udp_client.lua " .. port)
    check(client, "Received: HELLO, UDP\n")
    check(server, "Listening on udp 127.0.0.1:" .. port .. "\nReceived: hello, udp\n")
  end)

  it("unix: the server replaces a stale path, answers one line and removes its socket file", function()
    local path = os.tmpname() -- an ordinary file: the stale path the server must remove first
    local server, client = run_pair(LUA .. "unix_server.lua " .. path, LUA .. "unix_client.lua " .. path)
    check(client, "Received: Hello, Client! You sent 14 bytes\n")
    check(server, "Listening on " .. path .. "\nReceived: Hello, Server!\n")
    assert.is_nil(io.open(path), "the server left " .. path .. " behind")
  end)

  it("the demo runs the TCP pair as two processes", function()
    local p = assert(io.popen(LUA .. "demo.lua 2>&1"))
    local out = p:read("a")
    assert.truthy(out:find("[client] Received: Hello, Client!\n", 1, true), out)
    assert.truthy(out:find("[server] Received: Hello, Server!\n", 1, true), out)
    assert.is_true(p:close(), out)
  end)

  it("each Lua TCP example is shorter than the Python it replaces", function()
    for _, name in ipairs({ "tcp_server", "tcp_client" }) do
      local lua, py = nonblank_lines("examples/" .. name .. ".lua"), nonblank_lines("examples/python/" .. name .. ".py")
      assert.is_true(lua < py, name .. ": " .. lua .. " Lua lines, " .. py .. " Python lines")
    end
  end)

  it("README's side-by-side shows the TCP examples as they are", function()
    local readme = assert(io.open("README.md")):read("a")
    for _, path in ipairs({ "examples/tcp_server.lua", "examples/tcp_client.lua",
                            "examples/python/tcp_server.py", "examples/python/tcp_client.py" }) do
      local body = assert(io.open(path)):read("a")
      repeat -- the header comment lines (how to run it) are not shown
        local n
        body, n = body:gsub("^[-#][^\n]*\n", "")
      until n == 0
      assert.truthy(readme:find(body, 1, true), "README.md does not show " .. path .. " as it is")
    end
  end)

  it("each example's header says how to run it", function()
    for _, name in ipairs({ "tcp_server", "tcp_client", "udp_server", "udp_client", "unix_server", "unix_client", "demo" }) do
      local file = assert(io.open("examples/" .. name .. ".lua"))
      local header = file:read("l") .. "\n" .. file:read("l")
      file:close()
      assert.truthy(header:find("lua5.4 examples/" .. name .. ".lua", 1, true), name .. " header: " .. header)
    end
  end)
end)
