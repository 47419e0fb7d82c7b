-- qadmin's index of Resque's `failed` list: counts per queue and the positions of each queue's
-- failures, kept in qadmin's own keys and CHECKED against the list on every call, never trusted.
--
-- KEYS[1] the failed list      KEYS[2] the index hash      KEYS[3] the set of the index's keys
-- KEYS[4] the generation counter
-- ARGV[1] mode: 'sync' | 'read' | 'drop'
-- ARGV[2] prefix of the per-queue position zsets (`…qadmin:failed:at:`), GEN:QUEUE appended
-- ARGV[3] prefix of the twins zset (`…qadmin:failed:twins:`), GEN appended
--
-- The index hash: `gen`, `n` (entries 0..n-1 are indexed), `tail` (the bytes of entry n-1, as
-- indexed), `v` (where the next scrub starts), `f:QUEUE` / `r:QUEUE` (failed / retried entries).
-- at:GEN:QUEUE: score = member = the position of each failure (not retried) of QUEUE.
-- twins:GEN: score = position, member `POS:SAME` for each failure with SAME byte-identical
-- entries among the TWIN_WINDOW before it (twins.py's `iter_failed` counts the same).
--
-- The check, on every call: `n` ≤ LLEN and LINDEX n-1 = `tail` (anything but appends at the tail
-- moves that boundary: a removal, resque-web's LSET "__delete__" + LREM, LTRIM, DEL, a new list);
-- the counts sum to `n` and each queue's zset holds its count (an index key edited by hand). In
-- place rewrites (Resque's requeue marks `retried_at` where the entry is) keep both: a scrub
-- re-reads a window of entries per call and compares them with the index. A failed check drops
-- the index; it is then rebuilt by the same calls that extend it, a window at a time.
--
-- 'sync': ARGV[4] entries to index per call, ARGV[5] entries to scrub per call.
--   Returns {'fresh', gen, n, field, value, ...} (the index hash) when every entry is indexed,
--   the same under 'behind' when entries n.. are not yet (the counts are those of 0..n-1),
--   {'wrongtype'} when `failed` is no list.
-- 'read': ARGV[8..] the queue names, ARGV[5] after (exclusive; '' = from the end),
--   ARGV[6] '1' backwards, ARGV[7] at most this many entries.
--   Returns {'ok', n, pos, raw, same, pos, raw, same, ...} in list order (positions below n, the
--   entries indexed), read in the same atomic step as the check; {'stale'} when the index does
--   not describe the list (sync first), also when an entry
--   read is not what the index says it is (the index is dropped: rebuilt on the next sync).
-- 'drop': the index forgotten (qadmin removed entries: positions moved).
local failed, index, keyset, genkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode = ARGV[1]
local at_prefix, twins_prefix = ARGV[2], ARGV[3]
local TWIN_WINDOW = 200
local RUN_GAP = 64

local function drop()
  for _, k in ipairs(redis.call('SMEMBERS', keyset)) do
    redis.call('UNLINK', k)
  end
  redis.call('DEL', keyset, index)
end

local function fresh_enough(len)
  -- the boundary check; returns gen, n when the index describes a prefix of the list
  if redis.call('TYPE', index).ok ~= 'hash' then return nil end
  local st = redis.call('HMGET', index, 'gen', 'n', 'tail')
  local gen, n, tail = st[1], tonumber(st[2]), st[3]
  if not gen or not n or not tail or n < 0 or n > len or n ~= math.floor(n) then return nil end
  if n > 0 and redis.call('LINDEX', failed, n - 1) ~= tail then return nil end
  if n == 0 and tail ~= '' then return nil end
  return gen, n
end

local function consistent(gen, n)
  -- the counts sum to n and each queue's zset holds its failures: no hand-edited index key
  local flat = redis.call('HGETALL', index)
  local sum = 0
  for i = 1, #flat, 2 do
    local field, value = flat[i], tonumber(flat[i + 1])
    local kind = string.sub(field, 1, 2)
    if kind == 'f:' or kind == 'r:' then
      if not value or value < 0 then return false end
      sum = sum + value
      if kind == 'f:' and redis.call('ZCARD', at_prefix .. gen .. ':' .. string.sub(field, 3)) ~= value then
        return false
      end
    end
  end
  return sum == n
end

local function dump(gen, n)
  local out = {'fresh', gen, n}
  for _, x in ipairs(redis.call('HGETALL', index)) do out[#out + 1] = x end
  return out
end

local function extend(gen, n, len, budget)
  local hi = math.min(len, n + budget) - 1
  if hi < n then return n end
  local lo = math.max(0, n - TWIN_WINDOW)
  local before = {}
  if n > 0 then before = redis.call('LRANGE', failed, lo, n - 1) end
  local items = redis.call('LRANGE', failed, n, hi)
  -- the sliding window of the TWIN_WINDOW entries before each one, as counts of their bytes
  local seq = {}
  for _, raw in ipairs(before) do seq[#seq + 1] = raw end
  local base = #seq
  for _, raw in ipairs(items) do seq[#seq + 1] = raw end
  local window = {}
  for i = 1, base do window[seq[i]] = (window[seq[i]] or 0) + 1 end
  local added, retried, positions = {}, {}, {}
  local twins = {}
  local twins_key = twins_prefix .. gen
  for j = 1, #items do
    local k = base + j
    local raw = seq[k]
    local pos = n + j - 1
    local queue, was_retried = classify(raw)
    if was_retried then
      retried[queue] = (retried[queue] or 0) + 1
    else
      added[queue] = (added[queue] or 0) + 1
      local list = positions[queue]
      if not list then
        list = {}
        positions[queue] = list
      end
      list[#list + 1] = pos
      local same = window[raw] or 0
      if same > 0 then
        twins[#twins + 1] = pos
        twins[#twins + 1] = pos .. ':' .. same
      end
    end
    window[raw] = (window[raw] or 0) + 1
    local gone = k - TWIN_WINDOW
    if gone >= 1 then
      local old = seq[gone]
      window[old] = window[old] - 1
    end
  end
  for queue, list in pairs(positions) do
    local key = at_prefix .. gen .. ':' .. queue
    redis.call('SADD', keyset, key)
    for s = 1, #list, 500 do
      local args = {}
      for t = s, math.min(#list, s + 499) do
        args[#args + 1] = list[t]
        args[#args + 1] = list[t]
      end
      redis.call('ZADD', key, unpack(args))
    end
  end
  for queue, c in pairs(added) do redis.call('HINCRBY', index, 'f:' .. queue, c) end
  for queue, c in pairs(retried) do redis.call('HINCRBY', index, 'r:' .. queue, c) end
  if #twins > 0 then
    redis.call('SADD', keyset, twins_key)
    for s = 1, #twins, 500 do
      redis.call('ZADD', twins_key, unpack(twins, s, math.min(#twins, s + 499)))
    end
  end
  redis.call('HSET', index, 'n', hi + 1, 'tail', items[#items])
  return hi + 1
end

local function scrub(gen, n, budget)
  -- a window of indexed entries re-read: each failure must be where its queue's zset says, each
  -- retried entry in no zset of its queue (an in-place rewrite keeps the boundary as it was)
  if n == 0 or budget <= 0 then return true end
  local v = tonumber(redis.call('HGET', index, 'v')) or 0
  if v >= n or v < 0 then v = 0 end
  local hi = math.min(n, v + budget) - 1
  local items = redis.call('LRANGE', failed, v, hi)
  for j, raw in ipairs(items) do
    local pos = v + j - 1
    local queue, was_retried = classify(raw)
    local there = redis.call('ZSCORE', at_prefix .. gen .. ':' .. queue, pos)
    if (there ~= false) == was_retried then return false end
  end
  redis.call('HSET', index, 'v', hi + 1)
  return true
end

local ftype = redis.call('TYPE', failed).ok
if ftype ~= 'list' and ftype ~= 'none' then
  return {'wrongtype'}
end
local len = redis.call('LLEN', failed)

if mode == 'drop' then
  drop()
  return {'dropped'}
end

if mode == 'sync' then
  local budget, scrub_budget = tonumber(ARGV[4]), tonumber(ARGV[5])
  local gen, n = fresh_enough(len)
  if gen and not (consistent(gen, n) and scrub(gen, n, scrub_budget)) then
    gen = nil
  end
  if not gen then
    drop()
    gen = redis.call('INCR', genkey)
    n = 0
    redis.call('HSET', index, 'gen', gen, 'n', 0, 'tail', '', 'v', 0)
  end
  if n < len then
    n = extend(gen, n, len, budget)
  end
  local out = dump(gen, n)
  if n < len then out[1] = 'behind' end
  return out
end

-- 'read'
local gen, n = fresh_enough(len)
if not gen then
  return {'stale'}
end
local desc = ARGV[6] == '1'
local limit = tonumber(ARGV[7])
local after = ARGV[5]
local picked = {}
for a = 8, #ARGV do
  local queue = ARGV[a]
  local key = at_prefix .. gen .. ':' .. queue
  local got
  if desc then
    local top = '+inf'
    if after ~= '' then top = '(' .. after end
    got = redis.call('ZREVRANGEBYSCORE', key, top, '-inf', 'LIMIT', 0, limit)
  else
    local bottom = '-inf'
    if after ~= '' then bottom = '(' .. after end
    got = redis.call('ZRANGEBYSCORE', key, bottom, '+inf', 'LIMIT', 0, limit)
  end
  for _, p in ipairs(got) do picked[#picked + 1] = {tonumber(p), queue} end
end
if desc then
  table.sort(picked, function(a, b) return a[1] > b[1] end)
else
  table.sort(picked, function(a, b) return a[1] < b[1] end)
end
local count = math.min(limit, #picked)
local out = {'ok', n}
local twins_key = twins_prefix .. gen
local has_twins = redis.call('ZCARD', twins_key) > 0
-- positions read in runs: one LRANGE for neighbours (a walk to an index costs a walk along the
-- list, more than the entries between two of a queue's failures), LINDEX for a lone one
local raws = {}
local j = 1
while j <= count do
  local k = j
  while k < count and math.abs(picked[k + 1][1] - picked[k][1]) <= RUN_GAP do k = k + 1 end
  if k == j then
    raws[j] = redis.call('LINDEX', failed, picked[j][1])
  else
    local lo, hi = picked[j][1], picked[k][1]
    if lo > hi then lo, hi = hi, lo end
    local span = redis.call('LRANGE', failed, lo, hi)
    for t = j, k do raws[t] = span[picked[t][1] - lo + 1] end
  end
  j = k + 1
end
for j = 1, count do
  local pos, queue = picked[j][1], picked[j][2]
  local raw = raws[j]
  local q, was_retried = false, true
  if raw then q, was_retried = classify(raw) end
  if q ~= queue or was_retried then
    drop()
    return {'stale'}
  end
  local same = 0
  if has_twins then
    local twin = redis.call('ZRANGEBYSCORE', twins_key, pos, pos)
    if #twin > 0 then same = tonumber(string.match(twin[1], ':(%d+)$')) end
  end
  out[#out + 1] = pos
  out[#out + 1] = raw
  out[#out + 1] = same
end
return out
