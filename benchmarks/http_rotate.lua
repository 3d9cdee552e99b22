-- wrk script of benchmarks/http_load.py: rotate over prepared requests, report one JSON line.
--
--   wrk -t1 -c32 -d30s -s benchmarks/http_rotate.lua http://127.0.0.1:PORT -- REQUESTS_FILE [close]
--
-- REQUESTS_FILE holds one request a line: "<path>" or "<path><TAB><user token>" (sent as
-- a bearer token). done() prints "WRK_RESULT {json}": latency percentiles, requests,
-- errors, and, when the requests carry user tokens, what the 200 responses held (ok, and
-- items: occurrences of "distance_m", one per result of /v1/nearby), which the
-- impressions check counts. Only then are bodies handed to Lua: wrk copies every body
-- into a Lua string for response(), and scanning 1 MB answers (a city's clusters) held
-- one wrk thread to ~90 of them a second where the server gave ~750.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per thread (each has its own Lua state); read back in done() through thread:get.
prepared = {}
position = 0
sent = 0
ok = 0
items = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  local close = args[2] == "close"
  for line in file:lines() do
    local path, token = line:match("^([^\t]+)\t?(.*)$")
    local headers = {}
    if close then
      -- A fresh connection per request: accepted by whichever worker is free, as many
      -- clients' connections are, instead of staying with the worker that took it first.
      headers["Connection"] = "close"
    end
    if token ~= nil and token ~= "" then
      headers["Authorization"] = "Bearer " .. token
      response = count_items  -- wrk asks for bodies only if response() exists after init()
    end
    prepared[#prepared + 1] = wrk.format("GET", path, headers)
  end
  file:close()
  -- Threads start apart so that they do not send the same positions in step.
  position = (id * 97) % #prepared
end

function request()
  position = position % #prepared + 1
  sent = sent + 1
  return prepared[position]
end

function count_items(status, headers, body)
  if status == 200 then
    ok = ok + 1
    for _ in body:gmatch('"distance_m"') do
      items = items + 1
    end
  end
end

function done(summary, latency, requests)
  local total = { sent = 0, ok = 0, items = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do
      total[name] = total[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, '
      .. '"connect": %.0f, "read": %.0f, "write": %.0f, "status": %.0f, "timeout": %.0f, '
      .. '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, "mean_us": %.1f, '
      .. '"sent": %.0f, "ok": %.0f, "items": %.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    total.sent, total.ok, total.items))
end
