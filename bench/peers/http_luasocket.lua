-- LuaSocket peer of examples/http_hello.lua: non-blocking sockets and a
-- socket.select loop (select(2): fds above FD_SETSIZE=1024 cannot be watched).
-- Run: lua5.4 bench/peers/http_luasocket.lua PORT
local socket = require "socket"
local port = tonumber(arg[1]) or 8080
local body = "Hello, World!\n"
local response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #body .. "\r\n\r\n" .. body

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

local server = assert(socket.bind("0.0.0.0", port, 511))
server:settimeout(0)
local readers = { server }   -- sockets select() watches for input
local writers = {}           -- sockets with pending output
local state = {}             -- sock -> {rest=, skip=, out=, close=}

local function remove(list, s)
  for i = #list, 1, -1 do
    if list[i] == s then table.remove(list, i) return end
  end
end

local function reading(s, st, on)
  if on and not st.reading then readers[#readers + 1] = s end
  if not on and st.reading then remove(readers, s) end
  st.reading = on
end

local function writing(s, st, on)
  if on and not st.writing then writers[#writers + 1] = s end
  if not on and st.writing then remove(writers, s) end
  st.writing = on
end

local function drop(s, st)
  reading(s, st, false)
  writing(s, st, false)
  state[s] = nil
  s:close()
end

-- Sends pending output; waits for writability (and stops reading) if the
-- kernel takes only part of it.
local function flush(s, st)
  local last, err, partial = s:send(st.out)
  last = last or partial
  if last == #st.out then
    st.out = ""
    writing(s, st, false)
    if st.close then drop(s, st) else reading(s, st, true) end
  elseif err ~= "timeout" then
    drop(s, st)
  else
    st.out = st.out:sub(last + 1)
    writing(s, st, true)
    reading(s, st, false) -- backpressure
  end
end

print("LuaSocket HTTP on port " .. port)
io.stdout:flush()
while true do
  local readable, writable = socket.select(readers, writers)
  for _, s in ipairs(writable) do
    local st = state[s]
    if st then flush(s, st) end
  end
  for _, s in ipairs(readable) do
    if s == server then
      for _ = 1, 64 do
        local c = server:accept()
        if not c then break end
        c:settimeout(0)
        c:setoption("tcp-nodelay", true)
        local st = { rest = "", skip = 0, out = "" }
        state[c] = st
        reading(c, st, true)
      end
    else
      local st = state[s]
      if st then
        local data, err, partial = s:receive(65536)
        data = data or partial
        if err == "closed" and (not data or data == "") then
          drop(s, st)
        elseif data and #data > 0 then
          local chunk = #st.rest > 0 and st.rest .. data or data
          local out = {}
          local n, close
          n, st.rest, st.skip, close = parse(chunk, st.skip, out)
          if n > 0 then
            st.out = st.out .. table.concat(out)
            st.close = close
            flush(s, st)
          elseif close then drop(s, st) end
          if err == "closed" and state[s] then drop(s, st) end
        elseif err ~= "timeout" then
          drop(s, st)
        end
      end
    end
  end
end
