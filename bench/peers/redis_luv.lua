-- luv peer of examples/redis_lite.lua: RESP inline and multibulk PING, ECHO,
-- SET, GET, DEL, CONFIG (empty array); pipelined commands are answered with one
-- write per read. Run: lua5.4 bench/peers/redis_luv.lua PORT
local uv = require "luv"
local port = tonumber(arg[1]) or 6380
local store = {}

local function bulk(s) return "$" .. #s .. "\r\n" .. s .. "\r\n" end

local commands = {
  PING = function(a) return a[2] and bulk(a[2]) or "+PONG\r\n" end,
  ECHO = function(a) return a[2] and bulk(a[2]) end,
  SET = function(a)
    if not a[3] then return nil end
    store[a[2]] = a[3]
    return "+OK\r\n"
  end,
  GET = function(a)
    if not a[2] then return nil end
    local v = store[a[2]]
    return v and bulk(v) or "$-1\r\n"
  end,
  DEL = function(a)
    local n = 0
    for i = 2, #a do
      if store[a[i]] then n, store[a[i]] = n + 1, nil end
    end
    return ":" .. n .. "\r\n"
  end,
  CONFIG = function() return "*0\r\n" end,
}

-- One command from buf at pos: words and the next pos; false if incomplete;
-- nil if the client speaks nonsense.
local function parse_command(buf, pos)
  local eol = buf:find("\r\n", pos, true)
  if not eol then return false end
  if buf:byte(pos) ~= 42 then -- not '*': an inline command
    local words = {}
    for w in buf:sub(pos, eol - 1):gmatch("%S+") do words[#words + 1] = w end
    return words, eol + 2
  end
  local n = math.tointeger(tonumber(buf:sub(pos + 1, eol - 1)))
  if not n or n < 0 or n > 1024 * 1024 then return nil end
  local words = {}
  pos = eol + 2
  for i = 1, n do
    eol = buf:find("\r\n", pos, true)
    if not eol then return false end
    if buf:byte(pos) ~= 36 then return nil end
    local len = math.tointeger(tonumber(buf:sub(pos + 1, eol - 1)))
    if not len or len < 0 or len > 512 * 1024 * 1024 then return nil end
    local s = eol + 2
    if #buf < s + len + 1 then return false end
    if buf:sub(s + len, s + len + 1) ~= "\r\n" then return nil end
    words[i] = buf:sub(s, s + len - 1)
    pos = s + len + 2
  end
  return words, pos
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
  local rest = ""
  client:read_start(function(rerr, chunk)
    if rerr or not chunk then finish(client, rerr) return end
    local buf = #rest > 0 and rest .. chunk or chunk
    local pos, out, n = 1, {}, 0
    while pos <= #buf do
      local words, nextpos = parse_command(buf, pos)
      if words == nil then client:close() return end
      if not words then break end
      pos = nextpos
      if #words > 0 then
        local name = words[1]:upper()
        local command = commands[name]
        local reply = command and command(words)
        n = n + 1
        out[n] = reply or command and "-ERR wrong number of arguments for '" .. name .. "'\r\n"
          or "-ERR unknown command '" .. name .. "'\r\n"
      end
    end
    rest = buf:sub(pos)
    if n > 0 then client:write(out) end
  end)
end))
print("redis_luv on port " .. port)
io.stdout:flush()
uv.run()
