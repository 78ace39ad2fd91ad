-- Unix-domain client: connects to examples/unix_server.lua's socket file, sends a line, prints the answer.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/unix_client.lua [path]
-- Or: bin/csock examples/unix_client.lua [path]
local csock = require "csock"
local path = arg[1] or "/tmp/csock-example.sock"
local sock <close> = csock.socket("unix")
assert(sock:connect(path))
assert(sock:write("Hello, Server!\n"))
print("Received: " .. assert(sock:read("l")))
