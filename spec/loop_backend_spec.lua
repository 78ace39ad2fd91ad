-- The poller backends: CSOCK_BACKEND picks epoll or poll, csock.backend(),
-- csock.pollfd(), and when the poller is made.
--
-- The loop is one per Lua state, so it is shared by every spec of this
-- busted process: each test leaves it empty (checked by `H.nothing_left()`),
-- and the tests that would leave something behind run in a child process.
local csock = require "csock"
local H = require "helper"

describe("the poll backend", function()
  it("csock.backend() is the one CSOCK_BACKEND asks for (epoll by default)", function()
    local want = os.getenv("CSOCK_BACKEND")
    if want == nil or want == "" then want = "epoll" end
    assert.are.equal(want, csock.backend())
  end)

  it("csock.pollfd() is the epoll fd, or nil and a message on the poll backend", function()
    local r = table.pack(csock.pollfd())
    if csock.backend() == "epoll" then
      assert.are.equal(1, r.n)
      assert.are.equal("integer", math.type(r[1]))
      local link = io.popen("readlink /proc/" .. H.PID .. "/fd/" .. r[1]):read("l")
      assert.are.equal("anon_inode:[eventpoll]", link)
    else
      assert.is_nil(r[1])
      assert.are.equal("string", type(r[2]))
    end
  end)

  it("is made when first needed: require opens no fd, a task's wait or csock.pollfd() makes it", function()
    -- A script that only makes blocking calls never needs the poller; making it (and the
    -- resolver's eventfd) at require was a tenth of the module's start-up.
    local out, code = H.child([[
      local csock = require "csock"
      local pid = io.open("/proc/self/stat"):read("n")
      local function kinds()
        local p = io.popen("ls -l /proc/" .. pid .. "/fd")
        local s = p:read("a")
        p:close()
        local _, polls = s:gsub("anon_inode:%[eventpoll%]", "")
        local _, events = s:gsub("anon_inode:%[eventfd%]", "")
        return polls .. "," .. events
      end
      print("require", kinds())
      local u = csock.socket("inet", "dgram") -- a call that waits, outside any task
      assert(u:bind("127.0.0.1", 0))
      u:settimeout(0.01)
      assert(select(2, u:recvfrom()) == "timeout")
      u:close()
      print("blocking", kinds())
      csock.spawn(function() csock.sleep(0.001) end)
      csock.run()
      print("task", kinds())
      csock.spawn(function() assert(csock.getaddrinfo("localhost", 80)) end)
      csock.run()
      print("lookup", kinds())
      print("pollfd", type(csock.pollfd()))
    ]])
    assert.are.equal(0, code, out)
    local epoll = csock.backend() == "epoll" and 1 or 0
    assert.are.equal(("require\t0,0\nblocking\t0,0\ntask\t%d,0\nlookup\t%d,1\npollfd\t%s\n")
      :format(epoll, epoll, epoll == 1 and "number" or "nil"), out)
  end)

  it("an unknown CSOCK_BACKEND makes require fail", function()
    local p = assert(io.popen("CSOCK_BACKEND=kqueue-nope " ..
      H.lua_cmd("-e 'print(pcall(require, \"csock\"))' 2>&1")))
    local out = p:read("a")
    p:close()
    assert.is_truthy(out:find("^false\t[^\n]*unknown poll backend 'kqueue%-nope'"), out)
  end)
end)

describe("csock.nexttimeout()", function()
  it("nil with nothing to wake the loop but fds, 0 with a task ready, the time to the next timer", function()
    assert.is_nil(csock.nexttimeout())
    local t = csock.spawn(function() end)
    assert.are.equal(0, csock.nexttimeout())
    assert.is_false(csock.step()) -- runs it: nothing left
    assert.are.equal("done", t:status())
    local tm = csock.timer(5, function() end)
    local left = csock.nexttimeout()
    assert.is_true(left > 4.5 and left <= 5, tostring(left))
    tm:cancel()
    assert.is_nil(csock.nexttimeout())
    H.nothing_left()
  end)

  it("0 while output waits to be sent (copyto outside a task left bytes queued on its destination)", function()
    local a, b = H.tcp_pair()
    local c, d = H.tcp_pair()
    b:setoption("rcvbuf", 4096)
    c:setoption("sndbuf", 4096)
    a:write(("x"):rep(4 * 1024 * 1024)) -- more than c's peer will take while nobody reads d
    a:shutdown("w")
    c:settimeout(0.1)
    local n, err = b:copyto(c)
    assert.is_nil(n)
    assert.are.equal("timeout", err)
    assert.are.equal(0, csock.nexttimeout(), "a host loop must step: output is queued")
    a:close() b:close() c:close() d:close()
    H.nothing_left()
  end)

  it("a step with nothing to do returns false, and the loop stays usable", function()
    assert.is_false(csock.step(0.01))
    local r = table.pack(csock.run(function() return 1 end))
    assert.are.same({ n = 1, 1 }, r)
  end)
end)
