-- A small Redis: RESP inline and multibulk commands PING, ECHO, SET, GET,
-- DEL (and an empty CONFIG GET, for redis-benchmark); pipelining for free.
-- Run from the repo root after `make`: lua5.4 examples/redis_lite.lua [port]
-- Or: bin/csock examples/redis_lite.lua [port] (runs until Ctrl-C, which stops it cleanly)
-- Try it with `redis-cli -p 6380 set k v` or `redis-benchmark -p 6380`.
local csock = require "csock"
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

-- One command's words, or nil when the client is gone or speaks nonsense.
local function read_command(conn)
  local line = conn:read("l")
  if not line then return nil end
  if line:byte(1) ~= 42 then -- not '*': an inline command
    local words = {}
    for w in line:gmatch("%S+") do words[#words + 1] = w end
    return words
  end
  local n = math.tointeger(tonumber(line:sub(2)))
  if not n or n < 0 or n > 1024 * 1024 then return nil end
  local words = {}
  for i = 1, n do
    local len = conn:read("l")
    len = len and len:byte(1) == 36 and math.tointeger(tonumber(len:sub(2)))
    if not len or len < 0 or len > 512 * 1024 * 1024 then return nil end
    words[i] = conn:read(len)
    if not words[i] or conn:read(2) ~= "\r\n" then return nil end
  end
  return words
end

csock.listen("0.0.0.0", port, function(conn)
  while true do
    local words = read_command(conn)
    if not words then return end
    if #words > 0 then
      local name = words[1]:upper()
      local command = commands[name]
      local reply = command and command(words)
      conn:write(reply or command and "-ERR wrong number of arguments for '" .. name .. "'\r\n"
        or "-ERR unknown command '" .. name .. "'\r\n")
    end
  end
end)

print("redis_lite on port " .. port)
csock.run()
