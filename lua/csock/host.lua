-- What the csock executable adds around a script: SIGINT and SIGTERM stop
-- it gracefully (listeners close, running handlers get `grace` seconds to
-- finish and the loop to send what they wrote, then the loop stops and the
-- process exits 0). A second signal while waiting exits at once. Scripts
-- may replace this with csock.signal.
local csock = require "csock"

local host = { grace = 5, exiting = false }

-- Handlers still running, and closed sockets whose output the loop is
-- still sending: a handler that returned may have left its last reply
-- there (its peer reading slowly), and stopping the loop would cut it.
local function busy()
  local n = csock._sending()
  for server in pairs(csock.servers) do n = n + server.connections end
  return n
end

function host.shutdown()
  if host.stopping then os.exit(1, true) end
  host.stopping = true
  for server in pairs(csock.servers) do
    if not server.closed then server:close() end
  end
  local deadline = csock.now() + host.grace
  while busy() > 0 and csock.now() < deadline do csock.sleep(0.02) end
  host.exiting = true
  csock.stop()
end

function host.install(grace)
  host.grace = grace or host.grace
  csock.signal("INT", host.shutdown)
  csock.signal("TERM", host.shutdown)
end

return host
