-- Paced variant of wrk_script.lua (same modes, same BENCHJSON line): requests leave on a schedule
-- at a fixed offered rate instead of as fast as responses come back, so latency is measured at a
-- known load below capacity rather than at saturation.
-- wrk -t1 -cN ... -s wrk_paced.lua -- <mode> <lines file> <course> <rate req/s> [poisson|uniform]
--
-- One schedule per wrk thread (the harness runs -t1): each connection, when it is free, takes the
-- next send time (exponential gaps for poisson, 1/rate for uniform) and waits for it with wrk's
-- delay(). A connection is free again when its response is in, so with enough connections the
-- schedule, not the server, sets the pace; a send that leaves more than 1 ms behind its time counts
-- as `late` (all connections were busy: the offered rate was not really offered). wrk's timers
-- have 1 ms resolution, so sends are released on millisecond ticks: arrivals come in small bursts,
-- a little harsher on the tail than a smooth stream. Client latency runs from the actual send.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_script.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } lessonloop_timespec;
int clock_gettime(int clk_id, lessonloop_timespec *tp);
]]
local ts = ffi.new("lessonloop_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local base_init = init
local per_ms, poisson, next_ms = 1, true, nil

function init(args)
  base_init(args)
  per_ms = (tonumber(args[4]) or 1000) / 1000
  poisson = (args[5] or "poisson") ~= "uniform"
  math.randomseed(20261122 + (tid or 0))
end

function delay()
  local now = now_ms()
  if next_ms == nil then next_ms = now end
  if poisson then
    next_ms = next_ms - math.log(1 - math.random()) / per_ms
  else
    next_ms = next_ms + 1 / per_ms
  end
  local wait = next_ms - now
  if wait < -1 then late = late + 1 end
  if wait < 0 then return 0 end
  return wait
end
