-- wrk script: every request is a new one-ticket order from one of many buyers.
-- bench/flash_sale.py writes the buyers' tokens into TOKENS before running wrk.
local threads = {}
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

local counter = 0
local body = string.format('{"event_id":"%s","items":[{"ticket_type_id":"%s","quantity":1}]}', EVENT_ID, TICKET_TYPE_ID)

function request()
  counter = counter + 1
  local token = TOKENS[((id * 7919 + counter) % #TOKENS) + 1]
  return wrk.format("POST", "/api/v1/orders",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
