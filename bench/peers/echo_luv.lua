-- luv echo server for the stream test, with backpressure: reading stops while
-- more than 1 MiB of echoed output is queued. Run: lua5.4 bench/peers/echo_luv.lua PORT
local uv = require "luv"
local port = tonumber(arg[1]) or 3000
local HIGH = 1024 * 1024

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
  local reading = true
  local function on_read(rerr, chunk)
    if rerr or not chunk then finish(client, rerr) return end
    client:write(chunk, function()
      if not reading and not client:is_closing() and client:get_write_queue_size() < HIGH then
        reading = true
        client:read_start(on_read)
      end
    end)
    if client:get_write_queue_size() >= HIGH then
      reading = false
      client:read_stop()
    end
  end
  client:read_start(on_read)
end))
print("luv echo on port " .. port)
io.stdout:flush()
uv.run()
