-- A small Redis: RESP inline and multibulk commands PING, ECHO, SET, GET,
-- DEL (and an empty CONFIG GET, for redis-benchmark); pipelining for free.
-- Run from the repo root after `make`: lua5.4 examples/redis_lite.lua [port]
-- Or: bin/csock examples/redis_lite.lua [port] (runs until Ctrl-C, which stops it cleanly)
-- Try it with `redis-cli -p 6380 set k v` or `redis-benchmark -p 6380`.
local csock = require "csock"
local port = tonumber(arg[1]) or 6380
local store = {}

-- Each command gets the connection and its words, writes its reply and
-- returns true, or returns nothing when it has the wrong number of words.
-- writeresp encodes a string as a bulk string, an integer as an integer,
-- false as null and a table as an array; write sends a reply as it is.
local commands = {
  PING = function(c, a) return a[2] and c:writeresp(a[2]) or c:write("+PONG\r\n") end,
  ECHO = function(c, a) return a[2] and c:writeresp(a[2]) end,
  SET = function(c, a)
    if not a[3] then return end
    store[a[2]] = a[3]
    return c:write("+OK\r\n")
  end,
  GET = function(c, a) return a[2] and c:writeresp(store[a[2]] or false) end,
  DEL = function(c, a)
    local n = 0
    for i = 2, #a do
      if store[a[i]] then n, store[a[i]] = n + 1, nil end
    end
    return c:writeresp(n)
  end,
  CONFIG = function(c) return c:writeresp({}) end,
}

csock.listen("0.0.0.0", port, function(conn)
  while true do
    -- One command as a list of words (multibulk or an inline line; its
    -- arguments may be any RESP value, the store keeps what it gets), or
    -- nil, message when the client is gone or breaks the protocol.
    local words, err = conn:readresp()
    if not words then
      if err:find("^protocol error") then conn:write("-ERR Protocol error\r\n") end
      return
    end
    local name = type(words) == "table" and words[1]
    if type(name) == "string" then
      local command = commands[name] or commands[name:upper()]
      if not (command and command(conn, words)) then
        conn:writeresp({ err = (command and "ERR wrong number of arguments for '"
          or "ERR unknown command '") .. name .. "'" })
      end
    elseif name ~= nil then -- a reply, or a command whose name is not a string
      conn:write("-ERR Protocol error\r\n")
      return
    end -- (an empty command is ignored, as Redis does)
  end
end)

print("redis_lite on port " .. port)
csock.run()
