-- UDP client: sends one datagram to examples/udp_server.lua and prints the answer (gives up after 5 s).
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/udp_client.lua [port]
-- Or: bin/csock examples/udp_client.lua [port]
local csock = require "csock"
local port = tonumber(arg[1]) or 12346
local sock <close> = csock.socket("inet", "dgram")
sock:settimeout(5)
assert(sock:connect("127.0.0.1", port)) -- a connected UDP socket hears "connection refused"
assert(sock:send("hello, udp"))
print("Received: " .. assert(sock:recv(1024)))
