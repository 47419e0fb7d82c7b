-- Resque's push (docs/compatibility.md §1.4): the queue's name into `queues`, the payloads at its tail,
-- in one call; and which of its byte-identical twins each pushed entry is, so that enqueue
-- returns the id listings give it (`twins.py`: held twins first, then the queue from its
-- head: the entry is `.N`, N = held twins + equal entries before it + 1).
-- KEYS  1 queues set   2 queue:NAME   3 qadmin's locked set   4 Resque's workers set
-- ARGV  1 NAME   2 entries at the queue's tail looked over for twins (`TWIN_SCAN`: the count is
--       exact for a queue no longer than that)   then the payloads
-- Returns {foreign, before_1..before_k, held_1..held_k}: per payload the equal entries before it
-- in the queue and those qadmin's locked set holds; `foreign` 1 when a worker that is not
-- qadmin's is registered (its held jobs are counted by the caller, `View.lock_twins`).
-- A `queues` key of the wrong type (poison) does not stop the push: the queue is found by its key.
local old = redis.call('LLEN', KEYS[2])
local window = math.min(old, tonumber(ARGV[2]))

local count = {}   -- payload -> equal entries met so far
local distinct = {}
for i = 3, #ARGV do
  if count[ARGV[i]] == nil then
    count[ARGV[i]] = 0
    distinct[#distinct + 1] = ARGV[i]
  end
end

-- equal entries already queued: one LPOS per distinct payload, or one read of the window when a
-- batch has many (LPOS costs a pass over the window each)
if window > 0 then
  if #distinct <= 4 then
    for _, p in ipairs(distinct) do
      local hits = redis.call('LPOS', KEYS[2], p, 'RANK', -1, 'COUNT', 0, 'MAXLEN', window)
      count[p] = #hits
    end
  else
    local start = old - window
    while start < old do
      local stop = math.min(start + 999, old - 1)
      for _, raw in ipairs(redis.call('LRANGE', KEYS[2], start, stop)) do
        local c = count[raw]
        if c ~= nil then count[raw] = c + 1 end
      end
      start = stop + 1
    end
  end
end

redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
redis.pcall('SADD', KEYS[1], ARGV[1])

-- held twins in qadmin's locked set (as `View.locks` reads it: a key of the wrong type holds none)
local held = {}
if redis.pcall('ZCARD', KEYS[3]) ~= 0 then
  local envs = redis.pcall('ZRANGE', KEYS[3], 0, -1)
  if type(envs) == 'table' and envs.err == nil then
    for _, raw in ipairs(envs) do
      local ok, env = pcall(cjson.decode, raw)
      if ok and type(env) == 'table' and env.queue == ARGV[1] and type(env.payload) == 'string'
          and env.worker ~= nil and count[env.payload] ~= nil then
        held[env.payload] = (held[env.payload] or 0) + 1
      end
    end
  end
end

-- a registered worker whose host part does not end in `-qadmin` is Ruby's or PHP's
local foreign = 0
local rids = redis.pcall('SMEMBERS', KEYS[4])
if type(rids) == 'table' and rids.err == nil then
  for _, rid in ipairs(rids) do
    local host = string.match(rid, '^([^:]*)')
    if string.sub(host, -7) ~= '-qadmin' then
      foreign = 1
      break
    end
  end
end

local before, held_out = {}, {}
for i = 3, #ARGV do
  local p = ARGV[i]
  before[#before + 1] = count[p]
  count[p] = count[p] + 1
  held_out[#held_out + 1] = held[p] or 0
end
local out = {foreign}
for _, v in ipairs(before) do out[#out + 1] = v end
for _, v in ipairs(held_out) do out[#out + 1] = v end
return out
