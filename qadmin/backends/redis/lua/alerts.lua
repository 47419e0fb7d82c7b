-- Alert incidents (`redis/alerts.py`): each change a compare-and-set on the rule's hash, so that
-- among any number of evaluating processes exactly one opens, resolves or claims a delivery.
-- KEYS  1 the rule's hash (`Keys.alert`)   2 the set of rules with an incident (`Keys.alerts`)
-- ARGV  1 the step: open | resolve | claim | finish   2 the rule's name, then the step's own:
--   open     3 opened_at   4 details
--   resolve  3 resolved_at
--   claim    3 opened_at   4 the sent field   5 now (epoch)   6 the lease's end (epoch)   7 "1": resolved only
--   finish   3 opened_at   4 the sent field   5 sent_at ("" : not sent, released)
-- Returns 1 when the step was taken, else 0.
local step = ARGV[1]
local hash = KEYS[1]
if step == 'open' then
  if redis.call('HEXISTS', hash, 'opened_at') == 1 and redis.call('HEXISTS', hash, 'resolved_at') == 0 then
    return 0
  end
  redis.call('DEL', hash)
  redis.call('HSET', hash, 'opened_at', ARGV[3], 'details', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
if step == 'resolve' then
  if redis.call('HEXISTS', hash, 'opened_at') == 1 and redis.call('HEXISTS', hash, 'resolved_at') == 0 then
    redis.call('HSET', hash, 'resolved_at', ARGV[3])
    return 1
  end
  return 0
end
if redis.call('HGET', hash, 'opened_at') ~= ARGV[3] then
  return 0
end
if step == 'claim' then
  if redis.call('HEXISTS', hash, ARGV[4]) == 1 then
    return 0
  end
  if ARGV[7] == '1' and redis.call('HEXISTS', hash, 'resolved_at') == 0 then
    return 0
  end
  local held = tonumber(redis.call('HGET', hash, 'sending_until') or '')
  if held and held >= tonumber(ARGV[5]) then
    return 0
  end
  redis.call('HSET', hash, 'sending_until', ARGV[6])
  return 1
end
if step == 'finish' then
  redis.call('HDEL', hash, 'sending_until')
  if ARGV[5] ~= '' then
    redis.call('HSET', hash, ARGV[4], ARGV[5])
  end
  return 1
end
return redis.error_reply('unknown step ' .. tostring(step))
