-- TCP client: connects to examples/tcp_server.lua, sends "Hello, Server!", prints the reply.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/tcp_client.lua [port]
-- Or: bin/csock examples/tcp_client.lua [port]
local csock = require "csock"
local port = tonumber(arg[1]) or 12345
local sock <close> = csock.socket()
assert(sock:connect("127.0.0.1", port))
assert(sock:send("Hello, Server!"))
print("Received: " .. assert(sock:recv(1024)))
