-- The engine on its own, in C: spec/fuzz/fuzz_engine.c built as a
-- standalone random tester (build/spec/engine_test, or the sanitizer build
-- that `make asan` passes in CSOCK_ENGINE_TEST). Each program is a random
-- sequence of watches, fd activity, timers, work, hooks, refs and steps,
-- run on both poll backends and checked against a model of what the
-- engine documents; the binary aborts with the failing program on any
-- violation.
local H = require "helper"

local BIN = os.getenv("CSOCK_ENGINE_TEST") or "build/spec/engine_test"

-- Runs BIN with `count` programs from `seed`: its output, exit code.
-- LD_PRELOAD is dropped: under `make asan` it holds the shared ASan
-- runtime (for lua5.4), which the statically sanitized binary must not
-- get twice; leaks are checked here, as nothing of Lua's is around.
local function run(count, seed)
  local cmd = string.format(
    "env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 %s/%s %d %s 2>&1",
    H.ROOT, BIN, count, seed)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

describe("the engine (C, random programs, both backends)", function()
  it("is built", function()
    local f = io.open(H.ROOT .. "/" .. BIN, "rb")
    assert.is_truthy(f, BIN .. " is missing: make test (or make asan) builds it")
    f:close()
  end)

  it("passes 2000 programs of a fixed seed", function()
    local out, code = run(2000, 20240607)
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("engine: 2000 programs, both backends, ok", 1, true), out)
  end)

  it("passes 1000 programs of a time-based seed", function()
    local seed = os.time()
    local out, code = run(1000, seed)
    local why = "seed " .. seed .. " (replay: " .. BIN .. " 1000 " .. seed .. ")\n" .. out
    assert.are.equal(0, code, why)
    assert.is_truthy(out:find("engine: 1000 programs, both backends, ok", 1, true), why)
  end)
end)
