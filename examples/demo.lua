-- Demo (`make demo`): runs examples/tcp_server.lua and examples/tcp_client.lua as two processes talking on a free port.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/demo.lua
-- Or: bin/csock examples/demo.lua (then the server and client run under bin/csock too)
local csock = require "csock"
local lua = arg[-1] or "lua5.4"
local port do -- a free port: bind to port 0, read back the one the kernel chose
  local probe <close> = csock.socket()
  assert(probe:bind("127.0.0.1", 0))
  port = select(2, assert(probe:getsockname()))
end
local server_cmd = lua .. " examples/tcp_server.lua " .. port
local client_cmd = lua .. " examples/tcp_client.lua " .. port
print("$ " .. server_cmd .. " &")
local server = assert(io.popen(server_cmd .. " 2>&1"))
print("$ " .. client_cmd)
local ok, out
for _ = 1, 50 do -- run the client, again while the server is not listening yet
  local client = assert(io.popen(client_cmd .. " 2>&1"))
  out = client:read("a")
  ok = client:close()
  if ok or not out:find("connection refused", 1, true) then break end
  csock.select({}, {}, 0.05)
end
io.write((out:gsub("[^\n]+", "[client] %0")))
io.write((server:read("a"):gsub("[^\n]+", "[server] %0")))
os.exit(ok and server:close() and 0 or 1)
