-- Add a worker's history counts to their buckets (`redis/history.py`), all at once.
-- KEYS: the bucket hashes. ARGV, per key in turn: its ttl (seconds), the number N of changes,
-- then N triples (op, field, value): 'i' HINCRBY, 'f' HINCRBYFLOAT, 'm' keep the maximum.
local a = 1
for k = 1, #KEYS do
  local key = KEYS[k]
  local ttl = tonumber(ARGV[a])
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, n do
    local op, field, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    a = a + 3
    if op == 'i' then
      redis.call('HINCRBY', key, field, value)
    elseif op == 'f' then
      redis.call('HINCRBYFLOAT', key, field, value)
    else
      local current = redis.call('HGET', key, field)
      if not current or tonumber(current) < tonumber(value) then
        redis.call('HSET', key, field, value)
      end
    end
  end
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
