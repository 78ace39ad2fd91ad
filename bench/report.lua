-- Turns bench/run's raw results into the markdown report.
-- Usage: lua5.4 bench/report.lua META RAW
-- META: key=value lines. RAW: tab-separated load, server, round, key, value;
-- keys: value (the load's main number), eff (per server CPU-second), cpu
-- (server CPU seconds), note, rss, na (why that measurement is missing), and
-- for the startup load base_ms / csock_ms.
local meta_path, raw_path = arg[1], arg[2]

local meta, meta_order = {}, {}
for line in io.lines(meta_path) do
  local k, v = line:match("^([%w_]+)=(.*)$")
  if k then meta[k] = v meta_order[#meta_order + 1] = k end
end

-- data[load][server][round][key] = value
local data = {}
for line in io.lines(raw_path) do
  local load, server, round, key, value = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  if load then
    round = tonumber(round)
    data[load] = data[load] or {}
    data[load][server] = data[load][server] or {}
    local rd = data[load][server]
    rd[round] = rd[round] or {}
    rd[round][key] = value
  end
end

local ROUNDS = tonumber(meta.rounds) or 1
local SERVERS = { "csock", "c", "luv", "cqueues", "luasocket", "node", "asyncio", "redis-server" }
local NAMES = {
  csock = "csock", c = "C (epoll)", luv = "luv", cqueues = "cqueues", luasocket = "LuaSocket",
  node = "Node (net)", asyncio = "asyncio", ["redis-server"] = "redis-server",
}

local LOADS = {
  { id = "http-c100", title = "HTTP keep-alive, wrk -t1 -c100", unit = "req/s", eff = "req/CPU-s" },
  { id = "http-c1000", title = "HTTP keep-alive, wrk -t1 -c1000", unit = "req/s", eff = "req/CPU-s" },
}
for _, p in ipairs { "16", "1" } do
  for _, t in ipairs { "ping_inline", "ping_mbulk", "set", "get" } do
    LOADS[#LOADS + 1] = {
      id = "redis-P" .. p .. "-" .. t,
      title = "redis-benchmark -c 50" .. (p == "16" and " -P 16" or "") .. ": " .. t:upper(),
      unit = "req/s", eff = "req/CPU-s",
    }
  end
end
LOADS[#LOADS + 1] = { id = "stream", title = "stream " .. math.floor((tonumber(meta.stream_bytes) or 0) / 1048576)
  .. " MiB through an echo server, 1 connection", unit = "MiB/s", eff = "MiB/CPU-s" }
LOADS[#LOADS + 1] = { id = "idle", title = (meta.idle_conns or "?") .. " idle keep-alive connections: server RSS",
  unit = "KB/conn", eff = "conn set up/CPU-s", lower = true }
LOADS[#LOADS + 1] = { id = "connrate", title = "new connections (connect, 1 request, close; "
  .. (meta.connrate_conc or "8") .. " in flight)", unit = "conn/s", eff = "conn/CPU-s" }

local function median(t)
  if #t == 0 then return nil end
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

local function fmt(v)
  if v == nil then return "n/a" end
  if math.abs(v) >= 100 then
    local s = string.format("%.0f", v)
    local neg = s:sub(1, 1) == "-"
    if neg then s = s:sub(2) end
    s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
    return (neg and "-" or "") .. s
  end
  if math.abs(v) >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function ratio_fmt(v) return v and string.format("%.2f", v) or "n/a" end

local function cell(s) return (tostring(s):gsub("|", "\\|"):gsub("\n", " ")) end

-- per-round values of key for one server of one load
local function series(load, server, key)
  local out = {}
  local rd = data[load] and data[load][server]
  if not rd then return out end
  for r = 1, ROUNDS do
    local v = rd[r] and tonumber(rd[r][key])
    if v then out[r] = v end
  end
  return out
end

local function values(t)
  local out = {}
  for r = 1, ROUNDS do if t[r] then out[#out + 1] = t[r] end end
  return out
end

local function ratios(a, b)
  local out = {}
  for r = 1, ROUNDS do
    if a[r] and b[r] and b[r] ~= 0 then out[#out + 1] = a[r] / b[r] end
  end
  return median(out)
end

-- "a–b": the spread of the per-round csock/peer ratios (with 3 rounds or more)
local function spread(a, b)
  local lo, hi, n = math.huge, -math.huge, 0
  for r = 1, ROUNDS do
    if a[r] and b[r] and b[r] ~= 0 then
      local x = a[r] / b[r]
      lo, hi, n = math.min(lo, x), math.max(hi, x), n + 1
    end
  end
  if n < 3 then return nil end
  return string.format("ratios %.2f–%.2f", lo, hi)
end

local function notes(load, server, ok, extra)
  local rd = data[load] and data[load][server]
  local seen, list = {}, {}
  local function add(s)
    if not seen[s] then seen[s] = true list[#list + 1] = s end
  end
  if extra then add(extra) end
  if ok < ROUNDS then add(ok .. "/" .. ROUNDS .. " rounds") end
  if rd then
    for r = 1, ROUNDS do
      local x = rd[r]
      if x and x.na then add("n/a: " .. x.na:sub(1, 160)) end
      if x and x.note then add(x.note:sub(1, 120)) end
    end
  end
  if load == "idle" and rd then
    local rss = {}
    for r = 1, ROUNDS do if rd[r] and rd[r].rss then rss[#rss + 1] = rd[r].rss end end
    if #rss > 0 then add("RSS " .. rss[#rss]) end
  end
  return table.concat(list, "; ")
end

local out = {}
local function w(s) out[#out + 1] = s end

w("# csock benchmark results")
w("")
w("- command: `" .. (meta.command or "?") .. "`")
w("- date: " .. (meta.date or "?") .. "; run took " .. (meta.elapsed or "?") .. " s")
w("- machine: nproc " .. (meta.nproc or "?") .. ", " .. (meta.cpu or "?") .. ", Linux " .. (meta.kernel or "?"))
w("- load average: " .. (meta.loadavg or "?"))
w("- csock: " .. (meta.csock or "?") .. "; " .. (meta.versions or ""))
w("- " .. (meta.rounds or "?") .. " rounds (every server once per round, order rotated), "
  .. (meta.duration or "?") .. " s per wrk/connrate measurement; " .. (meta.pin or ""))
w("- redis-benchmark requests per test: " .. (meta.redis_n or "?"))
w("")
w("Numbers are medians over rounds; csock/peer is the median of the per-round ratios. "
  .. "Above 1 csock is faster (more per second, more per server CPU-second); for KB/conn "
  .. "below 1 means csock uses less memory per connection. \"CPU-s\" is the server's own "
  .. "CPU time (utime+stime from /proc/PID/stat) during the measurement; \"server busy\" is that "
  .. "CPU time over the measurement's wall time (well under 100%: the server was not the bottleneck, "
  .. "the single-threaded load generator or a noisy neighbour was).")
w("")
local header_at = #out + 1
w("| load | server | median | per server CPU-s | csock/peer | csock/peer per CPU-s | server busy | notes |")
w("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
local rows = 0

for _, L in ipairs(LOADS) do
  local d = data[L.id]
  if d then
    local base = series(L.id, "csock", "value")
    local base_eff = series(L.id, "csock", "eff")
    local first = true
    for _, s in ipairs(SERVERS) do
      if d[s] then
        local v = series(L.id, s, "value")
        local e = series(L.id, s, "eff")
        local vv = values(v)
        local mv, me = median(values(v)), median(values(e))
        local r, re, sp
        if s ~= "csock" then sp = spread(base, v) end
        if s == "csock" then
          r, re = (#vv > 0 and "1" or "n/a"), (#vv > 0 and "1" or "n/a")
        else
          r, re = ratio_fmt(ratios(base, v)), ratio_fmt(ratios(base_eff, e))
        end
        local label = first and ("**" .. L.title .. "**") or ""
        first = false
        local busy = L.id ~= "idle" and median(values(series(L.id, s, "busy")))
        w(string.format("| %s | %s | %s | %s | %s | %s | %s | %s |", cell(label), NAMES[s] or s,
          mv and (fmt(mv) .. " " .. L.unit) or "n/a", me and (fmt(me) .. " " .. L.eff) or "n/a",
          r, re, busy and string.format("%.0f%%", busy) or "", cell(notes(L.id, s, #vv, sp))))
        rows = rows + 1
      end
    end
  end
end

if rows == 0 then -- no server load was run
  table.remove(out, header_at)
  table.remove(out, header_at)
end

local st = data.startup and data.startup.csock
if st then
  w("")
  w("| start-up (200 interleaved runs each, median per run) | median |")
  w("| --- | ---: |")
  local b, c, diff = series("startup", "csock", "base_ms"), series("startup", "csock", "csock_ms"),
    series("startup", "csock", "value")
  local mb, mc, md = median(values(b)), median(values(c)), median(values(diff))
  w("| `lua5.4 -e ''` | " .. (mb and string.format("%.2f ms", mb) or "n/a") .. " |")
  w("| `lua5.4 -e 'require\"csock\"'` | " .. (mc and string.format("%.2f ms", mc) or "n/a") .. " |")
  w("| difference: cost of `require \"csock\"` | " .. (md and string.format("%.2f ms", md) or "n/a") .. " |")
  local n = notes("startup", "csock", #values(diff))
  if n ~= "" then w("") w("start-up notes: " .. n) end
end

io.write(table.concat(out, "\n"), "\n")
