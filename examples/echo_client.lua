-- Echo client: Node's net example (sends 'Hello Server!', prints the reply).
-- Run from the repo root after `make`: lua5.4 examples/echo_client.lua [port]
-- Or: bin/csock examples/echo_client.lua [port]
local csock = require "csock"

local conn <close> = assert(csock.connect("127.0.0.1", tonumber(arg[1]) or 3000))
print("Connected")
conn:write("Hello Server!")
print("Reply: " .. assert(conn:recv()))
