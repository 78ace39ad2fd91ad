-- csock: require "csock" loads the C core (csock.core) and adds the
-- conveniences written in Lua: connect (every address, one deadline) and
-- listen (a task per connection).
local core = require "csock.core"

local csock = {}
for k, v in pairs(core) do csock[k] = v end
csock.gettime = core.now
-- Set in the processes `csock --workers N` starts: 1..N.
csock.worker = math.tointeger(tonumber(os.getenv("CSOCK_WORKER") or ""))
-- Every server csock.listen made and not yet collected (the host closes
-- them on SIGINT/SIGTERM).
csock.servers = setmetatable({}, { __mode = "k" })

local function unix_connect(path, opts)
  local s, err, code = core.socket("unix")
  if not s then return nil, err, code end
  if opts.timeout then s:settimeout(opts.timeout) end
  local ok
  ok, err, code = s:connect(path)
  if not ok then s:close() return nil, err, code end
  return s
end

-- Python's socket.create_connection: every resolved address in turn, one
-- deadline for all of them. csock.connect(path) connects a unix socket.
function csock.connect(host, port, opts)
  if type(port) == "table" then port, opts = nil, port end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'connect' (table expected for options, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  if type(host) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(host) .. ")", 2)
  end
  if opts.timeout ~= nil and not (type(opts.timeout) == "number" and opts.timeout >= 0) then
    error("bad argument #3 to 'connect' (timeout must be a non-negative number)", 2)
  end
  if port == nil then return unix_connect(host, opts) end
  local deadline = opts.timeout and core.now() + opts.timeout
  local addrs, err, code = core.getaddrinfo(host, port, nil, "stream", opts.timeout)
  if not addrs then return nil, err, code end
  for _, a in ipairs(addrs) do
    local s
    s, err, code = core.socket(a.family)
    if s then
      if deadline then
        local left = deadline - core.now()
        if left <= 0 then s:close() return nil, "timeout", core.errno.ETIMEDOUT end
        s:settimeout(left)
      end
      local ok
      ok, err, code = s:connect(a.host, a.port)
      if ok then
        if opts.timeout then s:settimeout(opts.timeout) end
        return s
      end
      s:close()
    end
  end
  return nil, err, code
end

-- Raises a bad-argument error blaming the caller of the public function
-- `depth` calls up (1: the function that called check).
local function check(cond, n, fname, msg, depth)
  if not cond then error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 2 + (depth or 1)) end
end

local function checkopts(opts)
  check(opts == nil or type(opts) == "table", 4, "listen", "table expected for options", 2)
  opts = opts or {}
  local function count(name, min, max)
    local v = opts[name]
    check(v == nil or math.type(v) == "integer" and v >= min and v <= max, 4, "listen",
      ("option '%s' must be an integer from %d to %d"):format(name, min, max), 3)
  end
  count("backlog", 0, 65535)
  count("maxconnections", 1, math.maxinteger)
  check(opts.reuseport == nil or type(opts.reuseport) == "boolean", 4, "listen",
    "option 'reuseport' must be a boolean", 2)
  check(opts.timeout == nil or type(opts.timeout) == "number" and opts.timeout >= 0, 4, "listen",
    "option 'timeout' must be a non-negative number", 2)
  return opts
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
  check(type(host) == "string", 1, "listen", "string expected for host")
  check(math.type(port) == "integer" and port >= 0 and port <= 65535, 2, "listen", "port out of range")
  check(type(handler) == "function", 3, "listen", "function expected for handler")
  opts = checkopts(opts)
  local family = host:find(":", 1, true) and "inet6" or "inet"
  if host ~= "*" and not host:match("^[%d.]+$") and family == "inet" then
    local addrs, err, code = core.getaddrinfo(host, port, nil, "stream")
    if not addrs then return nil, err, code end
    host, family = addrs[1].host, addrs[1].family
  end
  local sock, err, code = core.socket(family)
  if not sock then return nil, err, code end
  local ok = true
  local function step(...)
    if ok then ok, err, code = ... end
  end
  step(sock:setoption("reuseaddr", true))
  -- Workers of one host share their listeners' ports unless told otherwise.
  local reuseport = opts.reuseport
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
