-- cqueues peer of examples/http_hello.lua: one coroutine per connection,
-- reading the request line and header lines like the example.
-- Run: lua5.4 bench/peers/http_cqueues.lua PORT
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

local cq = cqueues.new()
local srv = socket.listen{ host = "0.0.0.0", port = port, reuseaddr = true, backlog = 511, nodelay = true }
srv:listen()

local function serve(conn)
  conn:setmode("b", "bn")
  while conn:read("*l") do -- the request line
    local length, close = 0, false
    for header in conn:lines("*l") do
      if header == "" or header == "\r" then break end
      local name, value = header:match("^([^:]+):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "content-length" then length = tonumber(value) or 0 end
      if name == "connection" and value:lower() == "close" then close = true end
    end
    if length > 0 and not conn:read(length) then break end
    if not conn:write(response) then break end
    if close then break end
  end
  conn:close()
end

cq:wrap(function()
  for conn in srv:clients() do
    cq:wrap(serve, conn)
  end
end)
print("cqueues HTTP on port " .. port)
io.stdout:flush()
while true do
  local ok, err = cq:loop()
  if not ok then io.stderr:write("cqueues: ", tostring(err), "\n") end
end
