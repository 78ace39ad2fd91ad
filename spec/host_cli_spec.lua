-- bin/csock's command line: a script and its arguments as under lua5.4, errors and exit
-- statuses, and the options (-e, -l, -v, -, --, --help, -E/LUA_INIT, -i, bad values).
-- Every child runs under `timeout`; servers take free ports. What the host specs share is in
-- spec/host_helper.lua. Run alone from the repo root (busted reads .busted there):
-- busted spec/host_cli_spec.lua
local H = require "helper"
local X = require "host_helper"

local q = H.shell_quote
local BIN, readfile, writefile, tmpdir = X.BIN, X.readfile, X.writefile, X.tmpdir
local PRELUDE_LINES, script, run = X.PRELUDE_LINES, X.script, X.run

local VERSION_LINE = "^csock %S+ %(Lua 5%.4%.%d+%)  Copyright %(C%) 1994%-2022 Lua%.org, PUC%-Rio\n"

describe("csock script.lua args: like lua5.4", function()
  it("gives the script arg[0], arg[1..], arg[-1] and ... as lua5.4 does, and exits 0", function()
    local path = script([[
print(arg[0] == SELF, arg[1], arg[2], arg[3], #arg, arg[-1], arg[-2])
print(select("#", ...), ...)
]])
    writefile(path, (readfile(path):gsub("SELF", string.format("%q", path))))
    local out, err, code = run(q(path) .. " a 'b c'")
    assert.are.equal("true\ta\tb c\tnil\t2\t" .. BIN .. "\tnil\n2\ta\tb c\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local lua_out = run(q(path) .. " a 'b c'", { bin = "lua5.4" })
    assert.are.equal(out:gsub(BIN:gsub("%p", "%%%0"), "lua5.4"), lua_out)
  end)

  it("an error exits 1 with 'csock: <msg>' and a stack traceback on stderr", function()
    local path = script('local x = 1\nerror("boom")\n')
    local out, err, code = run(q(path))
    assert.are.equal("", out)
    local at = path .. ":" .. PRELUDE_LINES + 2
    assert.are.equal("csock: " .. at .. ": boom\nstack traceback:\n\t[C]: in function 'error'\n\t"
      .. at .. ": in main chunk\n", err)
    assert.are.equal(1, code)
  end)

  it("an error object that is not a string is named, or shown by its __tostring", function()
    local _, err, code = run("-e 'error({})'")
    assert.are.equal("csock: (error object is a table value)\n", err:match("^[^\n]*\n"))
    assert.are.equal(1, code)
    _, err, code = run([[-e 'error(setmetatable({}, { __tostring = function() return "custom" end }))']])
    assert.are.equal("csock: custom\n", err)
    assert.are.equal(1, code)
  end)

  it("a syntax error exits 1 with the message", function()
    local path = script("x = = 1\n")
    local out, err, code = run(q(path))
    assert.are.equal("", out)
    assert.are.equal("csock: " .. path .. ":" .. PRELUDE_LINES + 1 .. ": unexpected symbol near '='\n", err)
    assert.are.equal(1, code)
  end)

  it("a missing script exits 1 with 'cannot open'", function()
    local _, err, code = run("/nonexistent/x.lua")
    assert.are.equal("csock: cannot open /nonexistent/x.lua: No such file or directory\n", err)
    assert.are.equal(1, code)
  end)

  it("os.exit(3) exits 3, os.exit(false) exits 1, os.exit(true) exits 0", function()
    assert.are.equal(3, select(3, run("-e 'os.exit(3)'")))
    assert.are.equal(1, select(3, run("-e 'os.exit(false)'")))
    assert.are.equal(0, select(3, run("-e 'os.exit(true)'")))
  end)
end)

describe("csock options", function()
  it("-e runs a statement (several run in order, before the script)", function()
    local path = script("print('script', x)\n")
    local out, err, code = run("-e 'x = 1' -e 'x = x + 1; print(x)' " .. q(path))
    assert.are.equal("2\nscript\t2\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-l mod requires a module into global mod, -l g=mod into global g", function()
    local dir = tmpdir()
    writefile(dir .. "/mymod.lua", "return { answer = 42, name = ... }\n")
    local env = "LUA_PATH=" .. q(dir .. "/?.lua") .. " "
    local out, err, code = run("-l mymod -e 'print(mymod.answer, mymod.name)'", { env = env })
    assert.are.equal("42\tmymod\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    out, err, code = run("-l m=mymod -e 'print(m.answer, mymod)'", { env = env })
    assert.are.equal("42\tnil\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    out, err, code = run("-lmymod -e 'print(mymod.answer)'", { env = env })
    assert.are.equal("42\n", out)
    assert.are.equal(0, code)
    out, err, code = run("-l nosuchmod", { env = env })
    assert.are.equal("", out)
    assert.truthy(err:find("^csock: module 'nosuchmod' not found:"), err)
    assert.are.equal(1, code)
    os.execute("rm -r " .. q(dir))
  end)

  it("-v prints a version line naming csock and Lua 5.4, and exits 0", function()
    local out, err, code = run("-v")
    assert.truthy(out:find(VERSION_LINE .. "$"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-v with a script prints the version line, then runs the script", function()
    local out, _, code = run("-v -e 'print(1)'")
    assert.truthy(out:find(VERSION_LINE .. "1\n$"), out)
    assert.are.equal(0, code)
  end)

  it("- runs stdin, with the arguments after it", function()
    local out, err, code = run("- a b", { stdin = "print(arg[0], ...)\n" })
    assert.are.equal("-\ta\tb\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("no script and no -e: stdin that is not a terminal is run", function()
    local out, _, code = run("", { stdin = "print('from stdin', #arg)\n" })
    assert.are.equal("from stdin\t0\n", out)
    assert.are.equal(0, code)
  end)

  it("-- ends the options: what follows is the script and its arguments", function()
    local path = script("print(arg[-1], arg[1], ...)\n")
    local out, err, code = run("-- " .. q(path) .. " -v -e")
    assert.are.equal("--\t-v\t-v\t-e\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("--help lists the options on stdout and exits 0", function()
    local out, err, code = run("--help")
    assert.truthy(out:find("^usage: csock %[options%] %[script %[args%]%]\n"), out)
    for _, opt in ipairs({ "-e stat", "-l mod", "-l g=mod", "-v", "-i", "-E", "--workers N", "--grace S",
                           "--help", "--", "-" }) do
      assert.truthy(out:find("\n  " .. opt:gsub("%p", "%%%0") .. " ", 1), opt .. " missing from:\n" .. out)
    end
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("an unknown option exits 1 with a message and the usage on stderr", function()
    local out, err, code = run("--bogus x.lua")
    assert.are.equal("", out)
    assert.truthy(err:find("^csock: unrecognized option '%-%-bogus'\nusage: csock %[options%]"), err)
    assert.are.equal(1, code)
    out, err, code = run("-x")
    assert.truthy(err:find("^csock: unrecognized option '%-x'\nusage: "), err)
    assert.are.equal(1, code)
  end)

  it("an option without its argument exits 1 with the usage", function()
    for _, args in ipairs({ "-e", "-l", "--workers", "--grace", "-e -v" }) do
      local out, err, code = run(args)
      local opt = args:match("^%S+")
      assert.are.equal("", out)
      assert.truthy(err:find("^csock: '" .. opt:gsub("%p", "%%%0") .. "' needs an argument\nusage: "), err)
      assert.are.equal(1, code, args)
    end
  end)

  it("--workers and --grace reject bad values", function()
    for _, args in ipairs({ "--workers 0", "--workers 1.5", "--workers x", "--workers 2000",
                            "--grace -1", "--grace nan", "--grace 1s" }) do
      local out, err, code = run(args .. " -e 'print(1)'")
      local opt, value = args:match("^(%S+) (%S+)$")
      assert.are.equal("", out)
      assert.are.equal("csock: bad value '" .. value .. "' for " .. opt .. "\n", err)
      assert.are.equal(1, code, args)
    end
  end)

  it("LUA_INIT runs first; -E ignores it", function()
    local out, _, code = run("-e 'print(x)'", { env = "LUA_INIT='x = 7'" })
    assert.are.equal("7\n", out)
    assert.are.equal(0, code)
    out = run("-E -e 'print(x)'", { env = "LUA_INIT='x = 7'" })
    assert.are.equal("nil\n", out)
    out = run("-e 'print(x)'", { env = "LUA_INIT='x = 7' LUA_INIT_5_4='x = 8'" })
    assert.are.equal("8\n", out)
  end)

  it("-i reads lines from stdin (no readline), runs them and prints expression values", function()
    local out, err, code = run("-i", { stdin = "x = 3\nx * 2\nfor i = 1, 2 do\nprint(i)\nend\n'a', nil, 1\n" })
    local version, rest = out:match("^([^\n]*\n)(.*)$")
    assert.truthy(version:find(VERSION_LINE), version)
    assert.are.equal("> > 6\n> >> >> 1\n2\n> a\tnil\t1\n> \n", rest)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("-i reports an error and goes on, and lets spawned tasks run between lines", function()
    local out, err, code = run("-i", {
      stdin = "error('oops')\nt = csock.spawn(function() print('in task') end)\nt:status()\n",
    })
    assert.are.equal("> > in task\n> done\n> \n", out:match("^[^\n]*\n(.*)$"))
    assert.truthy(err:find("^csock: stdin:1: oops\n"), err)
    assert.are.equal(0, code)
  end)
end)
