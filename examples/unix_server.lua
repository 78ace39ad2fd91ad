-- Unix-domain server: accepts one client on a socket file, reads one line, answers with a line, exits.
-- Run from the repo root after `make` (LUA_PATH/LUA_CPATH as in README): lua5.4 examples/unix_server.lua [path]
-- Or: bin/csock examples/unix_server.lua [path]
local csock = require "csock"
local path = arg[1] or "/tmp/csock-example.sock"
os.remove(path) -- a socket file left by an earlier run would make bind fail
local server <close> = csock.socket("unix")
assert(server:bind(path))
assert(server:listen())
print("Listening on " .. path)
local client <close> = assert(server:accept())
local line = assert(client:read("l"))
print("Received: " .. line)
assert(client:write("Hello, Client! You sent ", #line, " bytes\n"))
os.remove(path)
