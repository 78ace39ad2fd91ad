-- The TCP service examples/embed/embed.c hands to Lua: each line a client
-- sends comes back upper-cased with an id from the host's native
-- host.next_id(); "QUIT" asks the host to stop.
local server = assert(csock.listen("127.0.0.1", port or 0, function(conn)
  for line in conn:lines() do
    if line == "QUIT" then
      conn:write("bye\n")
      host.quit()
      return
    end
    conn:write(("%d %s %s\n"):format(host.next_id(), name, line:upper()))
  end
end))
local _, bound = server:getsockname()
return bound
