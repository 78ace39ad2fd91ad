-- sock:readresp() and sock:writeresp(): the Redis protocol (RESP2) parsed
-- and encoded in C, blocking and inside tasks, with its failure paths.
local csock = require "csock"
local H = require "helper"

-- Reads everything the peer sent within a short while (the peer keeps the connection).
local function drain(s, n)
  local got = assert(s:read(n))
  return got
end

describe("sock:readresp", function()
  local c, s
  before_each(function() c, s = H.tcp_pair() end)
  after_each(function() c:close(); s:close() end)

  it("reads each RESP2 type", function()
    c:send("+OK\r\n-ERR wrong type\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n")
    assert.are.equal("OK", s:readresp())
    assert.are.same({ err = "ERR wrong type" }, s:readresp())
    assert.are.equal(42, s:readresp())
    assert.are.equal(-7, s:readresp())
    assert.are.equal("hello", s:readresp())
    assert.are.equal("", s:readresp())
    assert.is_false(s:readresp())
    assert.is_false(s:readresp())
    assert.are.same({}, s:readresp())
  end)

  it("reads a command (an array of bulk strings) as a list of words", function()
    c:send("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
    assert.are.same({ "SET", "key", "value" }, s:readresp())
  end)

  it("keeps every byte of a bulk string, CR, LF and zero included", function()
    local binary = "a\r\nb\0c\r\n"
    c:send("$" .. #binary .. "\r\n" .. binary .. "\r\n")
    assert.are.equal(binary, s:readresp())
  end)

  it("reads nested arrays with mixed elements", function()
    c:send("*3\r\n*2\r\n:1\r\n$1\r\na\r\n$-1\r\n*1\r\n-ERR inner\r\n")
    assert.are.same({ { 1, "a" }, false, { { err = "ERR inner" } } }, s:readresp())
  end)

  it("reads an inline command as its words, split on spaces and tabs", function()
    c:send("PING\r\n  set \t k   v \r\nlf only\n")
    assert.are.same({ "PING" }, s:readresp())
    assert.are.same({ "set", "k", "v" }, s:readresp())
    assert.are.same({ "lf", "only" }, s:readresp())
  end)

  it("reads arrays nested 32 deep, the limit, empty or holding an error", function()
    local function nest(v, n) for _ = 1, n do v = { v } end return v end
    c:send(("*1\r\n"):rep(31) .. "*0\r\n" .. ("*1\r\n"):rep(32) .. "-ERR deep\r\n")
    assert.are.same(nest({}, 31), s:readresp())
    local deep = nest({ err = "ERR deep" }, 32)
    assert.are.same(deep, s:readresp())
    c:writeresp(deep) -- and writeresp sends back what readresp accepts
    assert.are.same(deep, s:readresp())
  end)

  it("skips empty and blank lines between commands, as Redis does", function()
    c:send("\r\n \t\r\n\r\n*1\r\n$4\r\nPING\r\n")
    assert.are.same({ "PING" }, s:readresp())
  end)

  it("reads pipelined commands one per call and leaves the rest for read", function()
    local pipeline = {}
    for i = 1, 100 do pipeline[i] = "*2\r\n$3\r\nGET\r\n$" .. #tostring(i) .. "\r\n" .. i .. "\r\n" end
    c:send(table.concat(pipeline) .. "tail\n")
    for i = 1, 100 do assert.are.same({ "GET", tostring(i) }, s:readresp()) end
    assert.are.equal("tail", s:read("l"))
  end)

  it("reads a bulk string of 4 MiB that arrives in many pieces", function()
    local big = H.pattern(65536):rep(64)
    local t = csock.spawn(function()
      c:write("$" .. #big .. "\r\n")
      for i = 1, #big, 100000 do c:write(big:sub(i, i + 99999)); c:flush() end
      c:write("\r\n")
    end)
    local got
    csock.run(function() got = s:readresp() end)
    assert.are.equal("done", t:status())
    assert.are.equal(#big, #got)
    assert.is_true(got == big, H.first_diff(got, big))
  end)

  it("in a task, waits for a value sent one byte at a time", function()
    local msg = "*2\r\n$4\r\nECHO\r\n$6\r\nslowly\r\n"
    local got
    csock.run(function()
      csock.spawn(function()
        for i = 1, #msg do
          c:send(msg:sub(i, i))
          csock.sleep(0.001)
        end
      end)
      got = s:readresp()
    end)
    assert.are.same({ "ECHO", "slowly" }, got)
  end)

  it("blocking outside tasks, waits for the rest of a value", function()
    local l = csock.socket()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    local peer = H.spawn_peer([[
      local csock = require "csock"
      local c = csock.socket()
      assert(c:connect("127.0.0.1", tonumber(arg[1])))
      c:send("*1\r\n$5\r\nhel")
      csock.sleep(0.05)
      c:send("lo\r\n")
      c:read("a")
    ]], port)
    l:settimeout(H.TIMEOUT)
    local conn = assert(l:accept())
    l:close()
    conn:settimeout(H.TIMEOUT)
    assert.are.same({ "hello" }, conn:readresp())
    conn:close()
    local out, code = peer:finish()
    assert.are.equal(0, code, out)
  end)

  it("returns nil, 'timeout', ETIMEDOUT when a value does not complete in time", function()
    s:settimeout(0.05)
    c:send("*2\r\n$3\r\nGET\r\n")
    assert.are.same({ n = 3, nil, "timeout", csock.errno.ETIMEDOUT }, table.pack(s:readresp()))
  end)

  it("returns nil, 'closed' at the end of the stream, between or inside values", function()
    c:send("*2\r\n$3\r\nGET\r\n$3\r\nk")
    c:shutdown("w")
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s:readresp()))
    local c2, s2 = H.tcp_pair()
    c2:send("+OK\r\n+PART")
    c2:close()
    assert.are.equal("OK", s2:readresp())
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s2:readresp()))
    assert.are.same({ n = 2, nil, "closed" }, table.pack(s2:readresp()))
    s2:close()
  end)

  it("returns nil, 'line too long' beyond the socket's read limit", function()
    s:setreadlimit(16)
    c:send("+" .. ("x"):rep(100) .. "\r\n")
    assert.are.same({ n = 2, nil, "line too long" }, table.pack(s:readresp()))
  end)

  local bad = {
    { ":12x\r\n", "bad integer" },
    { ":\r\n", "bad integer" },
    { ":1234567890123456789\r\n", "bad integer" },
    { "$abc\r\n", "bad bulk length" },
    { "$-2\r\n", "bad bulk length" },
    { "$536870913\r\n", "bad bulk length" },
    { "*x\r\n", "bad array length" },
    { "*-5\r\n", "bad array length" },
    { "*1048577\r\n", "bad array length" },
    { "$3\r\nabcXY", "bulk string without CRLF" },
    { "*2\r\n\r\n", "empty line in an array" },
    { "*1\r\nPING\r\n", "expected a type byte" },
    { ("*1\r\n"):rep(40) .. ":1\r\n", "arrays nested too deep" },
    { ("*1\r\n"):rep(32) .. "*0\r\n", "arrays nested too deep" },
  }
  for _, case in ipairs(bad) do
    it(("returns nil, 'protocol error: %s' for %q"):format(case[2], case[1]), function()
      c:send(case[1])
      assert.are.same({ n = 2, nil, "protocol error: " .. case[2] }, table.pack(s:readresp()))
    end)
  end

  it("does not allocate what an array only promises", function()
    s:settimeout(0.05)
    collectgarbage()
    local before = collectgarbage("count")
    c:send("*1048576\r\n*1048576\r\n$536870912\r\n")
    assert.are.equal("timeout", select(2, s:readresp()))
    assert.is_true(collectgarbage("count") - before < 256, "Lua heap grew by a promise")
  end)

  it("raises for a closed socket and for a non-socket", function()
    local x = csock.socket()
    x:close()
    assert.has_error(function() x:readresp() end, "attempt to use a closed socket")
    assert.has_error(function() s.readresp({}) end)
  end)
end)

describe("sock:writeresp", function()
  local c, s
  before_each(function() c, s = H.tcp_pair() end)
  after_each(function() c:close(); s:close() end)

  local cases = {
    { "a string as a bulk string", "hello", "$5\r\nhello\r\n" },
    { "the empty string", "", "$0\r\n\r\n" },
    { "binary bytes", "a\r\n\0", "$4\r\na\r\n\0\r\n" },
    { "an integer", 42, ":42\r\n" },
    { "a negative integer", -9223372036854775807 - 1, ":-9223372036854775808\r\n" },
    { "a float with an integer value", 3.0, ":3\r\n" },
    { "false as the null bulk string", false, "$-1\r\n" },
    { "an empty table as an empty array", {}, "*0\r\n" },
    { "a list as an array", { "GET", "k" }, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" },
    { "nested lists", { 1, { "a", false } }, "*2\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n" },
    { "{ err = msg } as an error", { err = "ERR nope" }, "-ERR nope\r\n" },
  }
  for _, case in ipairs(cases) do
    it("encodes " .. case[1], function()
      assert.are.equal(c, c:writeresp(case[2]))
      assert.are.equal(case[3], drain(s, #case[3]))
    end)
  end

  it("round-trips through readresp", function()
    local value = { "SET", "k", "v\r\n", 7, false, { { err = "E" }, {} } }
    c:writeresp(value)
    assert.are.same(value, s:readresp())
  end)

  it("raises for values RESP cannot carry, sending nothing", function()
    local loop = {}
    loop[1] = loop
    for _, v in ipairs({ true, 1.5, print, { "ok", print }, { err = "a\nb" }, loop }) do
      assert.has_error(function() c:writeresp(v) end)
    end
    assert.has_error(function() c:writeresp() end)
    c:writeresp("after")
    assert.are.equal("$5\r\nafter\r\n", drain(s, 11))
  end)

  it("in a task, coalesces small values into one send and sends large ones at once", function()
    local big = H.pattern(200000)
    csock.run(function()
      for i = 1, 3 do c:writeresp(i) end
      c:writeresp(big)
    end)
    assert.are.equal(":1\r\n:2\r\n:3\r\n", drain(s, 12))
    assert.are.equal(big, s:readresp())
  end)

  it("returns nil, message, errno once the peer is gone", function()
    s:close()
    local ok, err, errno
    for _ = 1, 100 do
      ok, err, errno = c:writeresp(("x"):rep(65536))
      if not ok then break end
      csock.sleep(0.01)
    end
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_number(errno)
    s = csock.socket() -- for after_each
  end)

  it("raises for a closed socket", function()
    local x = csock.socket()
    x:close()
    assert.has_error(function() x:writeresp("x") end, "attempt to use a closed socket")
  end)
end)
