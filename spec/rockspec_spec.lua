-- The rockspec builds and installs csock into a private tree from a copy of
-- the sources, and the installed module loads. Run alone: busted --tags=rockspec
local H = require "helper"

H.deadline(300) -- luarocks builds csock from a copy of the sources

local function sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. " ; } 2>&1; echo \"exit=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)\n?$"))
  return code, out
end

describe("rockspec/csock-scm-1.rockspec #rockspec", function()
  local tmp

  setup(function()
    local _, out = sh("mktemp -d")
    tmp = out:match("^(%S+)")
  end)

  teardown(function()
    if tmp and tmp:match("^/tmp/") then os.execute("rm -rf '" .. tmp .. "'") end
  end)

  it("luarocks make installs csock into a tree and lua5.4 loads it from there", function()
    local code, out = sh(("cd %q && cp -r csrc lua rockspec Makefile %q/"):format(H.ROOT, tmp))
    assert.are.equal(0, code, out)

    code, out = sh(("cd %q && timeout 240 luarocks --lua-version=5.4 --tree=%q/tree make rockspec/csock-scm-1.rockspec")
      :format(tmp, tmp))
    assert.are.equal(0, code, out)

    -- from /, with only the tree's paths: nothing can come from the work tree
    code, out = sh(("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 sh -c " ..
      "'eval \"$(luarocks --lua-version=5.4 --tree=%s/tree path)\" && " ..
      "lua5.4 -e \"local c = require [[csock]]; local s = c.socket(); s:close(); " ..
      "print(c._VERSION); print(package.searchpath([[csock.core]], package.cpath)); " ..
      "print(package.searchpath([[csock]], package.path))\"'"):format(tmp))
    assert.are.equal(0, code, out)
    local version, core, init = out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n")
    assert.are.equal("csock 0.1.0", version, out)
    assert.are.equal(tmp .. "/tree/lib/lua/5.4/csock/core.so", core, out)
    assert.are.equal(tmp .. "/tree/share/lua/5.4/csock/init.lua", init, out)
  end)
end)
