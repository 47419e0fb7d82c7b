-- Count resque-scheduler's delayed items per queue, server side.
-- KEYS[1] delayed_queue_schedule; ARGV[1] the key prefix of the delayed lists ("NS delayed:"),
-- ARGV[2] now (Unix seconds), ARGV[3], ARGV[4] the rank window of timestamps to read.
-- Returns {queue, due, later, ...}; an item without a string `queue` counts in queue "".
local stamps = redis.call('ZRANGE', KEYS[1], ARGV[3], ARGV[4], 'WITHSCORES')
local now = tonumber(ARGV[2])
local counts = {}
local order = {}
for i = 1, #stamps, 2 do
  local due = tonumber(stamps[i + 1]) <= now
  local items = redis.call('LRANGE', ARGV[1] .. stamps[i], 0, -1)
  for _, raw in ipairs(items) do
    local queue = ''
    local ok, item = pcall(cjson.decode, raw)
    if ok and type(item) == 'table' and type(item.queue) == 'string' then queue = item.queue end
    local c = counts[queue]
    if not c then
      c = {0, 0}
      counts[queue] = c
      order[#order + 1] = queue
    end
    if due then c[1] = c[1] + 1 else c[2] = c[2] + 1 end
  end
end
local out = {}
for _, queue in ipairs(order) do
  out[#out + 1] = queue
  out[#out + 1] = counts[queue][1]
  out[#out + 1] = counts[queue][2]
end
return out
