-- luv peer of examples/http_hello.lua: keep-alive HTTP/1.1, fixed response,
-- Connection: close and Content-Length bodies honoured, pipelined requests
-- answered with one write per read. Header lines parsed like the example.
-- Run: lua5.4 bench/peers/http_luv.lua PORT
local uv = require "luv"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

-- Parses complete requests in buf from pos; returns responses (count), the
-- unparsed rest, the body bytes still to skip, and whether to close.
local function parse(buf, skip, out)
  local pos, n = 1, 0
  while true do
    if skip > 0 then
      local avail = #buf - pos + 1
      if avail <= skip then return n, "", skip - avail, false end
      pos, skip = pos + skip, 0
    end
    local e = buf:find("\r\n\r\n", pos, true)
    if not e then break end
    local length, close = 0, false
    local hs = buf:find("\r\n", pos, true) + 2
    for header in buf:sub(hs, e + 1):gmatch("(.-)\r\n") do
      local name, value = header:match("^([^:]+):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "content-length" then length = tonumber(value) or 0 end
      if name == "connection" and value:lower() == "close" then close = true end
    end
    n = n + 1
    out[n] = response
    pos = e + 4
    if length > 0 then skip = length end
    if close then return n, "", 0, true end
  end
  return n, buf:sub(pos), skip, false
end

-- At EOF: stop reading, send what is queued, then close. On an error: close now.
local function finish(client, rerr)
  if client:is_closing() then return end
  client:read_stop()
  if rerr or not client:shutdown(function()
    if not client:is_closing() then client:close() end
  end) then client:close() end
end

local server = uv.new_tcp()
assert(server:bind("0.0.0.0", port))
assert(server:listen(511, function(err)
  if err then return end
  local client = uv.new_tcp()
  if not server:accept(client) then client:close() return end
  client:nodelay(true)
  local rest, skip = "", 0
  client:read_start(function(rerr, chunk)
    if rerr or not chunk then finish(client, rerr) return end
    if #rest > 0 then chunk = rest .. chunk end
    if #chunk > 1024 * 1024 then client:close() return end
    local out = {}
    local n, close
    n, rest, skip, close = parse(chunk, skip, out)
    if n == 1 then client:write(out[1]) elseif n > 1 then client:write(out) end
    if close then finish(client) end
  end)
end))
print("luv HTTP on port " .. port)
uv.run()
