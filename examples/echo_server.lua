-- Echo server: Node's net example (answers 'Echo: ' .. data to each chunk).
-- Run from the repo root after `make`: lua5.4 examples/echo_server.lua [port]
-- Or: bin/csock examples/echo_server.lua [port] (runs until Ctrl-C, which stops it cleanly)
local csock = require "csock"
local port = tonumber(arg[1]) or 3000

csock.listen("0.0.0.0", port, function(conn)
  print("Client connected")
  for data in conn:chunks() do
    print("Received: " .. data)
    conn:write("Echo: " .. data)
  end
  print("Client disconnected")
end)

print("Server on port " .. port)
csock.run()
