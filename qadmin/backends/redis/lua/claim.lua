-- A worker's round trip: record the outcomes of the jobs it ran, lock the next ones it chose, and
-- read the heads of its queues for the claim after, all in one call.
--
-- The caller chose the candidates from an earlier read, after decoding them and checking that it
-- can run them: each is locked only if its exact bytes are still in its queue and the queue is
-- not paused (reliable reserve, docs/compatibility.md §8.5). Nothing here decides what may run.
--
-- KEYS  1 locked zset   2 pause-all-workers   3 worker:RID   4 finished zset   5 stat:processed
--       6 stat:processed:RID   7 unique hash
--       then two per queue served: queue:NAME, pause:queue:NAME
--       then one per outcome: the throughput hash of its minute
-- ARGV  1 now (score of the locks)   2 finished retention (a ZREMRANGEBYSCORE max)   3 finished cap
--       4 '1' when the worker has a Resque id   5 jobs wanted   6 entries to read (0 = none)
--       7 number of queues Q   8 number of outcomes D
--       then two per queue: the start of its envelopes (up to the nonce) and of its worker:RID
--       value (the value is that .. payload .. '}')
--       then six per outcome: envelope, finished record, its score, the worker:RID value written
--       with the lock ('' = none), unique field ('' = none), job id
--       then three per candidate: queue number (1-based), payload, nonce
-- An envelope is `entries.envelope`'s JSON: the start, the nonce, then the payload as a
-- JSON string escaped as Python's json module escapes it (only '"', '\\' and control characters).
-- An outcome is recorded only while its envelope is still in the locked set (removing it is the
-- guard), so a call repeated after a lost reply records nothing twice.
-- Returns {outcomes recorded, {per candidate tried: its envelope when locked, else 0},
--          pause-all (0/1), {per queue read, in order: its first entries, or 0 when paused}}
local locked, pause_all, wkey = KEYS[1], KEYS[2], KEYS[3]
local has_rid = ARGV[4] == '1'
local nq, nd = tonumber(ARGV[7]), tonumber(ARGV[8])

local function truthy(v)
  return v and string.lower(string.match(v, '^%s*(.-)%s*$')) == 'true'
end

local recorded = 0
local base = 8 + 2 * nq
-- worker:RID values of recorded jobs, cleared after the locks unless a lock wrote the key anew
local ended = {}
for d = 1, nd do
  local at = base + 6 * (d - 1)
  local env, record, score, wjson, unique, job_id =
    ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6]
  if redis.call('ZREM', locked, env) == 1 then
    recorded = recorded + 1
    if unique ~= '' and redis.pcall('HGET', KEYS[7], unique) == job_id then
      redis.call('HDEL', KEYS[7], unique)
    end
    redis.call('ZADD', KEYS[4], score, record)
    local tkey = KEYS[7 + 2 * nq + d]
    -- every writer of a minute's hash sets its expiry with its first count (a counter that is
    -- not a number, poison, is left as it is: counting must not stop the work)
    if redis.pcall('HINCRBY', tkey, 'processed', 1) == 1 then
      redis.call('EXPIRE', tkey, 7200)
    end
    if has_rid and wjson ~= '' then
      ended[#ended + 1] = wjson
    end
  end
end
if recorded > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[3]) + 1))
  redis.pcall('INCRBY', KEYS[5], recorded)
  if has_rid then
    redis.pcall('INCRBY', KEYS[6], recorded)
  end
end

local pause_value = redis.pcall('GET', pause_all)
local all_paused = type(pause_value) == 'string' and truthy(pause_value)
local paused = {}
local function is_paused(q)
  if paused[q] == nil then
    paused[q] = redis.call('EXISTS', KEYS[7 + 2 * q]) == 1
  end
  return paused[q]
end

local short = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
               ['\b'] = '\\b', ['\f'] = '\\f'}
local function escape(c)
  return short[c] or string.format('\\u%04x', string.byte(c))
end

-- A candidate was read among the first entries of its queue (at most 100, claims.READ_AHEAD)
-- and entries move deeper only when jobs are pushed back at the head (releases, unlocks). It is
-- looked for only that near the head: when another worker took it, an unbounded LREM would walk the
-- whole queue to find nothing, on every such miss, which made two workers on a big queue slower
-- than one (and a bound of 1000 still cost two workers ~9 us a miss, a miss or so a job). One pushed
-- deeper meanwhile is not lost: this claim counts it as taken, and a later read finds it.
-- LPOS needs Redis 6.0.6; an older server lets LREM search as before.
local NEAR_HEAD = 128
local lpos_works = true
local function near_head(key, payload)
  if lpos_works then
    local pos = redis.pcall('LPOS', key, payload, 'MAXLEN', NEAR_HEAD)
    if type(pos) ~= 'table' then
      return pos ~= false
    end
    lpos_works = false
  end
  return true
end

local wanted = tonumber(ARGV[5])
local results = {}
local got = 0
local i = base + 6 * nd + 1
while i + 2 <= #ARGV and got < wanted do
  local q, payload = tonumber(ARGV[i]), ARGV[i + 1]
  local ok = 0
  if not all_paused and not is_paused(q) and near_head(KEYS[6 + 2 * q], payload)
      and redis.call('LREM', KEYS[6 + 2 * q], 1, payload) == 1 then
    local env = ARGV[7 + 2 * q] .. ARGV[i + 2] .. '","payload":"' ..
      string.gsub(payload, '[%z\1-\31"\\]', escape) .. '"}'
    redis.call('ZADD', locked, ARGV[1], env)
    if has_rid and got == 0 then
      redis.call('SET', wkey, ARGV[8 + 2 * q] .. payload .. '}')
    end
    got = got + 1
    ok = env
  end
  results[#results + 1] = ok
  i = i + 3
end
if #ended > 0 and not (has_rid and got > 0) then
  local current = redis.pcall('GET', wkey)
  for _, wjson in ipairs(ended) do
    if current == wjson then
      redis.call('DEL', wkey)
      break
    end
  end
end

local windows = {}
local per = tonumber(ARGV[6])
if per > 0 and not all_paused then
  local seen = 0
  for q = 1, nq do
    if is_paused(q) then
      windows[q] = 0
    else
      -- a queue key of the wrong type (poison) reads as empty: the other queues are served
      local items = redis.pcall('LRANGE', KEYS[6 + 2 * q], 0, per - 1)
      if type(items) ~= 'table' or items.err then items = {} end
      windows[q] = items
      seen = seen + #items
      if seen >= per then break end
    end
  end
end
return {recorded, results, all_paused and 1 or 0, windows}
