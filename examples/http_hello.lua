-- HTTP/1.1 server answering every request with a fixed body, keep-alive.
-- Run from the repo root after `make`: lua5.4 examples/http_hello.lua [port]
-- Or: bin/csock examples/http_hello.lua [port] (runs until Ctrl-C, which stops it cleanly)
-- Try it with `curl http://127.0.0.1:8080/` or `wrk http://127.0.0.1:8080/`.
local csock = require "csock"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

-- Each request's head (its request line and headers) comes whole, in one
-- call. Only Content-Length and Connection matter to this server, so only a
-- head with a header starting with C is looked into; plain (not pattern)
-- searches find them, as this runs once per request.
csock.listen("0.0.0.0", port, function(conn)
  while true do
    local head = conn:readuntil("\r\n\r\n")
    if not head then return end
    local length, close = 0, false
    if head:find("\nC", 1, true) or head:find("\nc", 1, true) then
      head = head:lower()
      local at = head:find("\ncontent-length:", 1, true)
      if at then length = math.tointeger(tonumber(head:match("^[ \t]*(%d+)", at + 16))) or 0 end
      at = head:find("\nconnection:", 1, true)
      close = at ~= nil and head:find("^[ \t]*close", at + 12) ~= nil
    end
    if length > 0 and not conn:read(length) then return end
    conn:write(response)
    if close then return end
  end
end, { timeout = 60 })

print("HTTP on port " .. port)
csock.run()
