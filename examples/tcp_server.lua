-- TCP server: accepts one client, prints its message, replies "Hello, Client!", then exits.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/tcp_server.lua [port]
-- Or: bin/csock examples/tcp_server.lua [port]
local csock = require "csock"
local port = tonumber(arg[1]) or 12345
local server <close> = csock.socket()
server:setoption("reuseaddr", true)
assert(server:bind("127.0.0.1", port))
assert(server:listen(5))
print("Listening on 127.0.0.1:" .. port)
local client <close> = assert(server:accept())
print("Received: " .. assert(client:recv(1024)))
assert(client:send("Hello, Client!"))
