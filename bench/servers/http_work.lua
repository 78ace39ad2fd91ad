-- HTTP keep-alive server whose requests cost CPU (about 40 us of Lua work
-- each), so that one process, not the load generator, is the bottleneck:
-- what `csock --workers` is for. Used by bench/workers.sh.
-- Run: bin/csock [--workers N] bench/servers/http_work.lua [port]
local port = tonumber(arg[1]) or 8080

local function respond()
  local sum = 0
  for i = 1, 4000 do sum = (sum * 31 + i) % 1000003 end
  local body = "sum " .. sum .. "\n"
  return "HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

csock.listen("0.0.0.0", port, function(conn)
  while conn:read("l") do
    repeat local header = conn:read("l") until header == "" or header == nil
    conn:write(respond())
  end
end)
