-- csock: require "csock" loads the C core (csock.core) and adds the
-- conveniences written in Lua.
local core = require "csock.core"

local csock = {}
for k, v in pairs(core) do csock[k] = v end
csock.gettime = core.now

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
  opts = opts or {}
  if type(host) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(host) .. ")", 2)
  end
  if opts.timeout ~= nil and not (type(opts.timeout) == "number" and opts.timeout >= 0) then
    error("bad argument #3 to 'connect' (timeout must be a non-negative number)", 2)
  end
  if port == nil then return unix_connect(host, opts) end
  local deadline = opts.timeout and core.now() + opts.timeout
  local addrs, err, code = core.getaddrinfo(host, port)
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

return csock
