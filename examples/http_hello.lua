-- HTTP/1.1 server answering every request with a fixed body, keep-alive.
-- Run from the repo root after `make`: lua5.4 examples/http_hello.lua [port]
-- Try it with `curl http://127.0.0.1:8080/` or `wrk http://127.0.0.1:8080/`.
local csock = require "csock"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

csock.listen("0.0.0.0", port, function(conn)
  while conn:read("l") do -- the request line
    local length, close = 0, false
    for header in conn:lines() do
      if header == "" then break end
      local name, value = header:match("^([^:]+):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "content-length" then length = tonumber(value) or 0 end
      if name == "connection" and value:lower() == "close" then close = true end
    end
    if length > 0 and not conn:read(length) then return end -- a body we ignore
    conn:write(response)
    if close then return end
  end
end, { timeout = 60 })

print("HTTP on port " .. port)
csock.run()
