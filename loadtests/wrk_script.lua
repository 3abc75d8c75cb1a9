-- wrk script for the benchmark harness (loadtests/loadgen.py writes the lines files).
-- wrk ... -s wrk_script.lua -- <mode> [lines file] [course]
--   ping:   GET /v1/ping
--   lesson: POST /v1/courses/<course>/lessons, one bearer token per line, cycled
--   answer: POST /v1/lessons/<lesson>/answers, lines "token lesson_id item_id", each used once
-- Prints one line "BENCHJSON {...}": client latency percentiles (µs), the Server-Timing app;dur
-- percentiles (ms) (and of app;dur minus cpuwait;dur when the server sends it), statuses, and how
-- many lessons came warm or cold. wrk_paced.lua loads this file
-- and adds a send schedule (a fixed offered rate) on top.

local mode, course = "ping", "spanish-a1-b1"
local lines, idx = {}, 0
durs, nd, warm, cold, non200, statuses = {}, 0, 0, 0, 0, {}
nets, nn = {}, 0  -- app;dur minus cpuwait;dur, when the server measures its CPU wait
late = 0  -- paced runs only: sends that left more than 1 ms behind their scheduled time
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "ping"
  if args[2] and args[2] ~= "" then
    for l in io.lines(args[2]) do lines[#lines + 1] = l end
  end
  course = args[3] or course
  -- threads start at different points of the lines
  idx = math.floor(#lines * (tid or 0) / 8)
end

function request()
  if mode == "ping" then
    return wrk.format("GET", "/v1/ping")
  end
  idx = idx + 1
  local line = lines[(idx - 1) % #lines + 1]
  if mode == "lesson" then
    return wrk.format("POST", "/v1/courses/" .. course .. "/lessons", {["Authorization"] = "Bearer " .. line}, "")
  end
  local tok, lesson, item = line:match("(%S+) (%S+) (%S+)")
  local body = '{"item_id":"' .. item .. '","answer":"x","response_ms":1500,"attempt_id":"' .. lesson .. '-' .. item .. '"}'
  return wrk.format("POST", "/v1/lessons/" .. lesson .. "/answers",
                    {["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
  for k, v in pairs(headers) do
    local lk = string.lower(k)
    if lk == "server-timing" then
      local d = string.match(v, "app;dur=([%d%.]+)")
      if d then nd = nd + 1; durs[nd] = tonumber(d) end
      local w = string.match(v, "cpuwait;dur=([%d%.]+)")
      if d and w then nn = nn + 1; nets[nn] = tonumber(d) - tonumber(w) end
    elseif lk == "x-lesson-source" then
      if v == "warm" then warm = warm + 1 else cold = cold + 1 end
    end
  end
end

local function pct(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[i]
end

function done(summary, latency, requests)
  local all, net, w, c, bad, st, lt = {}, {}, 0, 0, 0, {}, 0
  for _, t in ipairs(threads) do
    lt = lt + (t:get("late") or 0)
    for code, n in pairs(t:get("statuses")) do st[code] = (st[code] or 0) + n end
    local d = t:get("durs")
    for i = 1, t:get("nd") do all[#all + 1] = d[i] end
    local n = t:get("nets")
    for i = 1, t:get("nn") do net[#net + 1] = n[i] end
    w = w + t:get("warm"); c = c + t:get("cold"); bad = bad + t:get("non200")
  end
  table.sort(all)
  table.sort(net)
  local codes = {}
  for code, n in pairs(st) do codes[#codes + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"mean_us":%.1f,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"app_n":%d,"app_p50_ms":%.4f,"app_p95_ms":%.4f,"app_p99_ms":%.4f,' ..
    '"app_p999_ms":%.4f,"app_max_ms":%.4f,"net_n":%d,"net_p50_ms":%.4f,"net_p99_ms":%.4f,' ..
    '"net_p999_ms":%.4f,"warm":%d,"cold":%d,"late":%d,' ..
    '"non200":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max, #all, pct(all, 50),
    pct(all, 95), pct(all, 99), pct(all, 99.9), all[#all] or 0, #net, pct(net, 50), pct(net, 99),
    pct(net, 99.9), w, c, lt,
    bad, e.connect, e.read, e.write, e.timeout, table.concat(codes, ",")))
end
