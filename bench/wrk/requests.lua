-- wrk script: POST bodies (and headers) read from a file, sent round-robin; counts responses
-- whose body carries GraphQL "errors"; prints one JSON line with throughput and percentiles.
--
--   wrk -t1 -c8 -d10s -s bench/wrk/requests.lua http://127.0.0.1:PORT -- REQUESTS_FILE
--
-- REQUESTS_FILE: first line "PATH", then header lines "Name: value", then a line "--", then
-- one request body per line (JSON, no newlines inside).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  path = file:read("*l")
  headers = {}
  while true do
    local line = file:read("*l")
    if line == nil or line == "--" then break end
    local name, value = line:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  bodies = {}
  for line in file:lines() do
    if #line > 0 then table.insert(bodies, line) end
  end
  file:close()
  requests_made = {}
  for i, body in ipairs(bodies) do
    requests_made[i] = wrk.format("POST", path, headers, body)
  end
  counter = 0
  gql_errors = 0
  bad_status = 0
end

function request()
  counter = counter + 1
  return requests_made[(counter % #requests_made) + 1]
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body:find('"errors"', 1, true) then
    gql_errors = gql_errors + 1
  end
end

function done(summary, latency, requests)
  local errs, bad = 0, 0
  for _, thread in ipairs(threads) do
    errs = errs + thread:get("gql_errors")
    bad = bad + thread:get("bad_status")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"socket_errors":%d,"bad_status":%d,"graphql_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max,
    e.connect + e.read + e.write + e.timeout, bad, errs))
end
