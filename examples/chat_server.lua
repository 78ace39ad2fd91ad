-- Chat server: every line a client sends goes to all the other clients.
-- Run from the repo root after `make`: lua5.4 examples/chat_server.lua [port]
-- Or: bin/csock examples/chat_server.lua [port] (runs until Ctrl-C, which stops it cleanly)
-- Try it with two or more `nc 127.0.0.1 3001`.
local csock = require "csock"
local port = tonumber(arg[1]) or 3001
local clients = {}

csock.listen("0.0.0.0", port, function(conn, host, peerport)
  local name = host .. ":" .. peerport
  clients[conn] = name
  print(name .. " joined")
  for line in conn:lines() do
    for other in pairs(clients) do
      if other ~= conn then other:write(name, ": ", line, "\n") end
    end
  end
  clients[conn] = nil
  print(name .. " left")
end)

print("Chat on port " .. port)
csock.run()
