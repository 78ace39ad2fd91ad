-- csock: require "csock" loads the C core (csock.core) and adds the
-- conveniences written in Lua: connect (every address, one deadline) and
-- listen (a task per connection). Kept short: every script that requires
-- csock parses this file.
local core = require "csock.core"
local now, socket, getaddrinfo = core.now, core.socket, core.getaddrinfo

-- The core's own table, not a copy, which every require would pay for
-- (bench/RESULTS.md, start-up). (A host that loads only csock.core gets
-- neither listen nor connect; one that loads csock finds them there too.)
local csock = core
csock.gettime = now
-- Set in the processes `csock --workers N` starts: 1..N. Converted only
-- when set: converting "" runs libc code that nothing else in a start needs.
local worker = os.getenv("CSOCK_WORKER")
csock.worker = worker and math.tointeger(tonumber(worker))
-- Every server csock.listen made and not yet collected (the host closes
-- them on SIGINT/SIGTERM).
csock.servers = setmetatable({}, { __mode = "k" })

-- Raises a bad-argument error blaming the caller of the public function
-- that called check.
local function check(ok, n, msg, fname)
  if not ok then error(("bad argument #%d to '%s' (%s)"):format(n, fname or "listen", msg), 3) end
end

local function nonnegative(v)
  return v == nil or type(v) == "number" and v >= 0
end

local function integer(v, min, max)
  return v == nil or math.type(v) == "integer" and v >= min and v <= max
end

-- Python's socket.create_connection: every resolved address in turn, one
-- deadline for all of them. csock.connect(path) connects a unix socket.
function csock.connect(host, port, opts)
  if type(port) == "table" then port, opts = nil, port end
  check(opts == nil or type(opts) == "table", 3, "table expected for options, got " .. type(opts), "connect")
  check(type(host) == "string", 1, "string expected, got " .. type(host), "connect")
  local timeout = opts and opts.timeout
  check(nonnegative(timeout), 3, "timeout must be a non-negative number", "connect")
  -- A unix path is one attempt with the whole timeout (0: only if it connects at once).
  local deadline, addrs, err, code = port and timeout and now() + timeout
  if port == nil then
    addrs = { { family = "unix", host = host } }
  else
    addrs, err, code = getaddrinfo(host, port, nil, "stream", timeout)
    if not addrs then return nil, err, code end
  end
  for _, a in ipairs(addrs) do
    local s, ok
    s, err, code = socket(a.family)
    if s then
      local left = deadline and deadline - now()
      if left and left <= 0 then s:close() return nil, "timeout", csock.errno.ETIMEDOUT end
      s:settimeout(left or timeout)
      ok, err, code = s:connect(a.host, a.port)
      if ok then s:settimeout(timeout) return s end
      s:close()
    end
  end
  return nil, err, code
end

-- A listening server: its accept loop (in C, core._serve) is a task of its
-- own, and runs handler(conn, host, port) in a new task per connection.
local Server = {}

function Server.__index(self, key)
  if key == "connections" then return self.core:connections() end
  return Server[key]
end

function Server:close()
  self.closed = true
  self.core:close() -- an accept task waiting for a free slot ends too
  return self.socket:close()
end

function Server:getsockname()
  return self.socket:getsockname()
end

function csock.listen(host, port, handler, opts)
  check(type(host) == "string", 1, "string expected for host")
  check(math.type(port) == "integer" and port >= 0 and port <= 65535, 2, "port out of range")
  check(type(handler) == "function", 3, "function expected for handler")
  check(opts == nil or type(opts) == "table", 4, "table expected for options")
  opts = opts or {}
  local reuseport = opts.reuseport
  check(integer(opts.backlog, 0, 65535), 4, "option 'backlog' must be an integer from 0 to 65535")
  check(integer(opts.maxconnections, 1, math.maxinteger), 4,
    "option 'maxconnections' must be an integer from 1 to " .. math.maxinteger)
  check(reuseport == nil or type(reuseport) == "boolean", 4, "option 'reuseport' must be a boolean")
  check(nonnegative(opts.timeout), 4, "option 'timeout' must be a non-negative number")
  local family = host:find(":", 1, true) and "inet6" or "inet"
  if family == "inet" and host ~= "*" and not host:match("^[%d.]+$") then
    local addrs, err, code = getaddrinfo(host, port, nil, "stream")
    if not addrs then return nil, err, code end
    host, family = addrs[1].host, addrs[1].family
  end
  local sock, err, code = socket(family)
  if not sock then return nil, err, code end
  local ok = true
  local function step(...)
    if ok then ok, err, code = ... end
  end
  step(sock:setoption("reuseaddr", true))
  -- Workers of one host share their listeners' ports unless told otherwise.
  if reuseport == nil then reuseport = csock.worker ~= nil end
  if reuseport then step(sock:setoption("reuseport", true)) end
  step(sock:bind(host, port))
  step(sock:listen(opts.backlog or 511))
  step(sock:setoption("nodelay", true)) -- accepted sockets inherit it
  if not ok then
    sock:close()
    return nil, err, code
  end
  local server = setmetatable({ socket = sock }, Server)
  server.core, server.task = core._serve(sock, handler, opts.maxconnections, opts.timeout, server)
  csock.servers[server] = true
  return server
end

return csock
