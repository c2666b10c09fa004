-- wrk script of `python -m bench.load`: each connection creates shipments with an API key and
-- reads back the ones its thread created, alternately. Near the end only reads are sent, so no
-- create is still unanswered when wrk stops: every shipment stored was answered.
--
-- Configured through the environment (set by the runner):
--   PARCELPRO_API_KEY       the account's API key
--   PARCELPRO_SHIPMENT      a shipment body (JSON) whose reference contains {{REF}}
--   PARCELPRO_CREATE_UNTIL  unix time after which no more shipments are created

local api_key = os.getenv("PARCELPRO_API_KEY")
local shipment = os.getenv("PARCELPRO_SHIPMENT")
local create_until = tonumber(os.getenv("PARCELPRO_CREATE_UNTIL"))

local threads = {}
thread_number = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- Per thread (each has its own Lua state).
statuses = {}
local created_ids = {}
local sequence = 0
local read_next = false
local create_headers = {
  ["Authorization"] = "Bearer " .. (api_key or ""),
  ["Content-Type"] = "application/json",
}
local read_headers = { ["Authorization"] = "Bearer " .. (api_key or "") }

function request()
  local creating = os.time() < create_until
  if #created_ids > 0 and (read_next or not creating) then
    read_next = false
    local id = created_ids[math.random(#created_ids)]
    return wrk.format("GET", "/v1/shipments/" .. id, read_headers, nil)
  end
  if not creating then
    return wrk.format("GET", "/v1/shipments?limit=5", read_headers, nil)
  end
  read_next = true
  sequence = sequence + 1
  local reference = string.format("LOAD-%d-%d", thread_number, sequence)
  local body = string.gsub(shipment, "{{REF}}", reference)
  return wrk.format("POST", "/v1/shipments", create_headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    local id = string.match(body, '"id":"([0-9a-f%-]+)"')
    if id then
      if #created_ids < 5000 then
        table.insert(created_ids, id)
      else
        created_ids[math.random(#created_ids)] = id
      end
    end
  end
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'PARCELPRO_RESULT {"duration_us": %d, "requests": %d, "statuses": {%s}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.duration, summary.requests, table.concat(parts, ", "),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean
  ))
end
