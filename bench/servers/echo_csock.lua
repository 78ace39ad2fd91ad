-- csock echo server for the stream test: every byte read is written back,
-- by conn:copyto(conn) (the bytes stay in C, as Node's conn.pipe(conn)).
-- Run from the repo root: lua5.4 bench/servers/echo_csock.lua PORT
local csock = require "csock"
local port = tonumber(arg[1]) or 3000

assert(csock.listen("0.0.0.0", port, function(conn) conn:copyto(conn) end))

print("csock echo on port " .. port)
io.stdout:flush()
csock.run()
