-- HTTP/1.1 server answering every request with a fixed body, keep-alive.
-- Run from the repo root after `make`: lua5.4 examples/http_hello.lua [port]
-- Or: bin/csock examples/http_hello.lua [port] (runs until Ctrl-C, which stops it cleanly)
-- Try it with `curl http://127.0.0.1:8080/` or `wrk http://127.0.0.1:8080/`.
local csock = require "csock"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

-- Reads one request's headers: its body length, and whether to close after.
-- Only Content-Length and Connection matter, so other headers (the first
-- letter is not C) are skipped without parsing them.
local function headers(conn)
  local length, close = 0, false
  while true do
    local line = conn:read("l")
    if line == nil then return nil end
    if line == "" then return length, close end
    local c = line:byte(1)
    if c == 67 or c == 99 then
      local name, value = line:match("^(%S+):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "content-length" then length = math.tointeger(tonumber(value)) or 0 end
      if name == "connection" then close = value:lower() == "close" end
    end
  end
end

csock.listen("0.0.0.0", port, function(conn)
  while conn:read("l") do -- the request line
    local length, close = headers(conn)
    if length == nil or (length > 0 and not conn:read(length)) then return end
    conn:write(response)
    if close then return end
  end
end, { timeout = 60 })

print("HTTP on port " .. port)
csock.run()
