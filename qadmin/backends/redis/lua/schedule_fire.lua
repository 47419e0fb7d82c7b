-- One tick of a recurring schedule, or a run now, in one atomic step: the compare-and-set of the
-- last tick fired, the job pushed by push.lua's own code (Resque's RPUSH + SADD queues,
-- docs/compatibility.md §1.4, and the twin count that names it as enqueue names a job), and the
-- run recorded where resque-scheduler records it (`delayed:last_enqueued_at`, name -> Time#to_s,
-- as `enqueue_recurring` in lib/resque/scheduler.rb writes it) and in qadmin's memory (the text
-- written and the job's id).
-- A tick counts as fired when Ruby's scheduler wrote a run at or after it (a `last_enqueued_at`
-- that is not the text qadmin last wrote): leadership passed from Ruby to qadmin does not fire a
-- tick Ruby fired.
-- KEYS  1 persistent_schedules   2 qadmin's disabled schedules   3 qadmin's last ticks
--       4 delayed:last_enqueued_at   5 qadmin's runs   6 queues   7 queue:QUEUE
--       8 qadmin's locked set   9 Resque's workers set
-- ARGV  1 name   2 tick (epoch seconds; '' for run now)   3 payload   4 Time#to_s of now
--       5 the job's plain id (`QUEUE:TOKEN`)   6 QUEUE   7 `TWIN_SCAN`
-- Returns {1, foreign, before, held, runs} when enqueued (push.lua's counts, and the run as
-- recorded); {0} not (the tick or a later one fired already, or disabled); {-1} armed at this
-- tick (no tick remembered: nothing enqueued); {-2} no such schedule.

-- @push.lua: `local function push(KEYS, ARGV)`, push.lua's code on the keys and arguments given

-- Unix seconds of Ruby's Time#to_s ("2026-12-07 16:38:28 +0000", or "... UTC" for a UTC Time)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function epoch_of(text)
  local y, mo, d, h, mi, s, zone = string.match(text, '^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d) (.+)$')
  if y == nil then return nil end
  local offset = 0
  if zone ~= 'UTC' then
    local sign, zh, zm = string.match(zone, '^([%+%-])(%d%d)(%d%d)$')
    if sign == nil then return nil end
    offset = tonumber(zh) * 3600 + tonumber(zm) * 60
    if sign == '-' then offset = -offset end
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s) - offset
end

local name = ARGV[1]
local enabled = redis.call('HEXISTS', KEYS[1], name) == 1
if not enabled and redis.call('HEXISTS', KEYS[2], name) == 0 then
  return {-2}
end

if ARGV[2] ~= '' then
  if not enabled then return {0} end
  local tick = tonumber(ARGV[2])
  local last = tonumber(redis.call('HGET', KEYS[3], name) or '')
  if last == nil then
    redis.call('HSET', KEYS[3], name, ARGV[2])
    return {-1}
  end
  if tick <= last then return {0} end
  redis.call('HSET', KEYS[3], name, ARGV[2])
  local ran = redis.call('HGET', KEYS[4], name)
  if ran then
    local ours = nil
    local ok, run = pcall(cjson.decode, redis.call('HGET', KEYS[5], name) or '')
    if ok and type(run) == 'table' then ours = run.at end
    if ran ~= ours then
      local at = epoch_of(ran)
      if at ~= nil and at >= tick then return {0} end
    end
  end
end

local counts = push({KEYS[6], KEYS[7], KEYS[8], KEYS[9]}, {ARGV[6], ARGV[7], ARGV[3]})
local foreign, before, held = counts[1], counts[2], counts[3]
-- the id enqueue gives it (`ids.make_id`: the plain id, `.N` for the Nth twin); with a foreign
-- worker registered, the caller counts the twins it holds and corrects the record
local n = before + held + 1
local job = ARGV[5]
if n > 1 then job = job .. '.' .. n end
local runs = cjson.encode({at = ARGV[4], job = job})
redis.call('HSET', KEYS[4], name, ARGV[4])
redis.call('HSET', KEYS[5], name, runs)
return {1, foreign, before, held, runs}
