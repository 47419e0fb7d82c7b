-- Count a window of the `failed` list per queue, server side (no entry crosses the network).
-- KEYS[1] the failed list; ARGV[1], ARGV[2] the first and last index of the window.
-- Returns {queue, failed, retried, queue, failed, retried, ...}; an entry that is not a JSON
-- object counts as failed in queue "". An entry with `retried_at` was retried (qadmin: finished).
local items = redis.call('LRANGE', KEYS[1], ARGV[1], ARGV[2])
local counts = {}
local order = {}
for _, raw in ipairs(items) do
  local queue, retried = '', false
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' then
    if type(entry.queue) == 'string' then queue = entry.queue end
    retried = entry.retried_at ~= nil and entry.retried_at ~= cjson.null
  end
  local c = counts[queue]
  if not c then
    c = {0, 0}
    counts[queue] = c
    order[#order + 1] = queue
  end
  if retried then c[2] = c[2] + 1 else c[1] = c[1] + 1 end
end
local out = {}
for _, queue in ipairs(order) do
  out[#out + 1] = queue
  out[#out + 1] = counts[queue][1]
  out[#out + 1] = counts[queue][2]
end
return out
