-- TCP proxy: each connection to PORT is relayed to TARGET_HOST:TARGET_PORT,
-- both ways at once. copyto moves the bytes in C, waiting for the slower side.
-- Run from the repo root after `make`:
--   lua5.4 examples/tcp_proxy.lua [port] [target_host] [target_port]
-- Or: bin/csock examples/tcp_proxy.lua [port] [target_host] [target_port] (Ctrl-C stops it cleanly)
-- e.g. in front of examples/http_hello.lua: lua5.4 examples/tcp_proxy.lua 8000 127.0.0.1 8080
local csock = require "csock"
local port = tonumber(arg[1]) or 8000
local target_host, target_port = arg[2] or "127.0.0.1", tonumber(arg[3]) or 8080

csock.listen("0.0.0.0", port, function(client)
  local upstream <close> = csock.connect(target_host, target_port, { timeout = 60 })
  if not upstream then return end -- the client's connection just closes
  local up = csock.spawn(function()
    client:copyto(upstream) -- until the client ends its stream (or fails)
    upstream:shutdown("w")  -- then the target sees it end too
  end)
  upstream:copyto(client)   -- the target's answers, until it ends
  client:shutdown("w")
  up:join()
end, { timeout = 60 })

print(("Proxy on port %d to %s:%d"):format(port, target_host, target_port))
csock.run()
