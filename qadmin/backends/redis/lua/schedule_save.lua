-- Save a recurring schedule where resque-scheduler looks for it (docs/compatibility.md §2.4):
-- enabled, in `persistent_schedules` as `set_schedule` writes it; disabled, in qadmin's own hash,
-- out of Ruby's sight. Either way the name goes into `schedules_changed`, so a running Ruby
-- scheduler (dynamic) reloads it (lib/resque/scheduler/scheduling_extensions.rb, `set_schedule`).
-- The memory of ticks only ever moves forward here: armed when absent, and with `rearm` moved to
-- the armed tick when that is later (a schedule enabled again, or ticking at other times).
-- KEYS  1 persistent_schedules   2 qadmin's disabled schedules   3 schedules_changed
--       4 qadmin's last ticks     5 qadmin's schedule meta
-- ARGV  1 name   2 config (JSON)   3 '1' enabled / '0' disabled   4 armed tick (epoch seconds)
--       5 '1' rearm / '0'   6 meta (JSON), '' to leave it as it is
-- Returns the last tick remembered after the save, as stored.
local name = ARGV[1]
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], name, ARGV[2])
  redis.call('HDEL', KEYS[2], name)
else
  redis.call('HSET', KEYS[2], name, ARGV[2])
  redis.call('HDEL', KEYS[1], name)
end
redis.call('SADD', KEYS[3], name)
local stored = redis.call('HGET', KEYS[4], name)
local last = tonumber(stored or '')
if last == nil or (ARGV[5] == '1' and tonumber(ARGV[4]) > last) then
  redis.call('HSET', KEYS[4], name, ARGV[4])
  stored = ARGV[4]
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], name, ARGV[6])
end
return stored
