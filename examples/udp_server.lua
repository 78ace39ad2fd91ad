-- UDP server: receives one datagram, prints it, sends it back upper-cased, then exits.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/udp_server.lua [port]
-- Or: bin/csock examples/udp_server.lua [port]
local csock = require "csock"
local port = tonumber(arg[1]) or 12346
local sock <close> = csock.socket("inet", "dgram")
assert(sock:bind("127.0.0.1", port))
print("Listening on udp 127.0.0.1:" .. port)
local data, host, peer_port = assert(sock:recvfrom(1024))
print("Received: " .. data)
assert(sock:sendto(data:upper(), host, peer_port))
