-- Run units of Redis commands atomically; each unit is guarded by its first step.
--
-- ARGV[1]  a tombstone string unique to this call (never stored beyond it)
-- ARGV[2]  the units, as MessagePack:
--   units := [unit...]   unit := [step...]   step := [op, [keyindex...], [arg...]]
--   (keyindex: 1-based index into KEYS)
-- The first step of a unit is its guard: when it answers false, nil or 0, the unit's other
-- steps are skipped. Returns one 1/0 per unit. Besides Redis commands, ops may be:
--   NOP                          always 1
--   TOMB    list   hint value    replace `value` (at `hint` if it is there, else its first copy)
--                                by the tombstone; every tombstone is LREM'd at the end, so
--                                list indexes stay put while the units run
--   LSETEQ  list   hint old new  replace `old` (found the same way) by `new`
--   SETEQ   key    old new [ttl] SET only while the key still holds `old`
--   DELEQ   key    old           DEL only while the key still holds `old`
--   HDELEQ  hash   field old     HDEL only while the field still holds `old`
--   HSETEQ  hash   field old new HSET only while the field holds `old` ('' = absent)
--   DROPEMPTY list zset member   DEL an empty list and ZREM its member from the zset
--   ZCAP    zset   max           keep the `max` highest-scored members
local tomb = ARGV[1]
local results = {}
local tombed = {}

local function find(key, hint, value)
  local i = tonumber(hint)
  if i and i >= 0 and redis.call('LINDEX', key, i) == value then
    return i
  end
  local p = redis.call('LPOS', key, value)
  if p then
    return p
  end
  return nil
end

local custom = {}
custom.NOP = function(keys, args) return 1 end
custom.TOMB = function(keys, args)
  local i = find(keys[1], args[1], args[2])
  if not i then return 0 end
  redis.call('LSET', keys[1], i, tomb)
  tombed[keys[1]] = (tombed[keys[1]] or 0) + 1
  return 1
end
custom.LSETEQ = function(keys, args)
  local i = find(keys[1], args[1], args[2])
  if not i then return 0 end
  redis.call('LSET', keys[1], i, args[3])
  return 1
end
custom.SETEQ = function(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  redis.call('SET', keys[1], args[2])
  if args[3] and args[3] ~= '' then redis.call('EXPIRE', keys[1], args[3]) end
  return 1
end
custom.DELEQ = function(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  redis.call('DEL', keys[1])
  return 1
end
custom.HDELEQ = function(keys, args)
  if redis.call('HGET', keys[1], args[1]) ~= args[2] then return 0 end
  return redis.call('HDEL', keys[1], args[1])
end
custom.HSETEQ = function(keys, args)
  local cur = redis.call('HGET', keys[1], args[1])
  if not cur then cur = '' end
  if cur ~= args[2] then return 0 end
  redis.call('HSET', keys[1], args[1], args[3])
  return 1
end
custom.DROPEMPTY = function(keys, args)
  if redis.call('LLEN', keys[1]) == 0 then
    redis.call('DEL', keys[1])
    redis.call('ZREM', keys[2], args[1])
    return 1
  end
  return 0
end
-- HISTORY hash   max ttl entry  a job's run: numbered after the last (field 'n'), the run `max`
--                                before it dropped; the hash expires after `ttl` ('' = never)
custom.HISTORY = function(keys, args)
  local n = redis.call('HINCRBY', keys[1], 'n', 1)
  redis.call('HSET', keys[1], n, args[3])
  local max = tonumber(args[1])
  if n > max then redis.call('HDEL', keys[1], n - max) end
  if args[2] ~= '' then redis.call('EXPIRE', keys[1], args[2]) end
  return 1
end
custom.ZCAP = function(keys, args)
  return redis.call('ZREMRANGEBYRANK', keys[1], 0, -(tonumber(args[1]) + 1))
end

-- A key of the wrong type (poison in a shared namespace) must stop neither the call nor the other
-- units, and must never half-apply a unit: a unit whose job would land in a key of the wrong type
-- is not applied at all (the job stays where it was); a guard that meets one answers false;
-- bookkeeping (counters, Resque's worker registry, the `queues` set) is skipped where it cannot go.
local MOVES_INTO = {RPUSH = 'list', LPUSH = 'list', ZADD = 'zset'}
local BOOKKEEPING = {INCR = true, INCRBY = true, HINCRBY = true, EXPIRE = true, SADD = true, SREM = true,
                     HSET = true, HDEL = true, HISTORY = true}

local function lands(unit)
  for _, step in ipairs(unit) do
    local want = MOVES_INTO[step[1]]
    if want then
      local t = redis.call('TYPE', KEYS[step[2][1]]).ok
      if t ~= 'none' and t ~= want then return false end
    end
  end
  return true
end

local units = cmsgpack.unpack(ARGV[2])
for u, unit in ipairs(units) do
  local ok = lands(unit)
  for s, step in ipairs(ok and unit or {}) do
    local op = step[1]
    local keys = {}
    for k, index in ipairs(step[2]) do keys[k] = KEYS[index] end
    local args = step[3]
    local done, r
    if custom[op] then
      done, r = pcall(custom[op], keys, args)
    else
      local cmd = {op}
      for _, key in ipairs(keys) do cmd[#cmd + 1] = key end
      for _, arg in ipairs(args) do cmd[#cmd + 1] = arg end
      r = redis.pcall(unpack(cmd))
      done = not (type(r) == 'table' and r.err)
    end
    if not done then
      if s == 1 then r = false
      elseif not BOOKKEEPING[op] then
        for key, count in pairs(tombed) do  -- no tombstone outlives the call
          redis.call('LREM', key, count, tomb)
        end
        return redis.error_reply(tostring(type(r) == 'table' and r.err or r))
      end
    end
    if s == 1 and (not r or r == 0) then
      ok = false
      break
    end
  end
  results[u] = ok and 1 or 0
end
for key, count in pairs(tombed) do
  redis.call('LREM', key, count, tomb)
end
return results
