-- Retry many failure entries in one call: each is marked `retried_at` (or removed) and its
-- payload pushed onto its queue, only while the entry still holds the bytes that were read.
--
-- KEYS[1] the failed list, KEYS[2] the `queues` set, KEYS[3..] queue lists
-- ARGV[1] a tombstone unique to this call ('' = mark entries instead of removing them)
-- ARGV[2] n, the number of entries
-- ARGV[3] six big-endian int64 per entry: hint (the index it was read at, -1 if unknown); the
--         length of its bytes; the length of its marked bytes in ARGV[5] (-1: the entry's bytes
--         less the closing brace, then ARGV[6]); where the payload to push starts in the entry's
--         bytes (-1: next in ARGV[5]); its length; the KEYS index of its queue list
-- ARGV[4] every entry's bytes, concatenated
-- ARGV[5] the marked entries and payloads that are not made from the entry's bytes
-- ARGV[6] the mark: `,"retried_at":"..."}`
-- ARGV[7..] the queue names of KEYS[3..], then qadmin's index of `failed` (failed_index.lua):
--         its hash, the prefix of its per-queue zsets and of its twins zset
-- Returns one 1/0 per entry (0 also for an entry whose queue key holds another type than a list).
--
-- A bulk retry names runs of neighbouring entries: one LRANGE reads them all, where
-- `apply.lua` would walk the list to each entry twice (LINDEX, then LSET). The entries travel
-- as a few long strings (thousands of arguments would cost more to send than to run), and
-- what can be made from an entry's own bytes is not sent again.
--
-- An entry marked in place moves, in the same step, from its queue's failures to its retried
-- entries in qadmin's index of `failed`; a removal (or a mark the index cannot follow) drops the
-- index, which the next reader rebuilds (failed_index.lua).
local failed = KEYS[1]
local tomb = ARGV[1]
local n = tonumber(ARGV[2])
local ints, raws, extra, mark = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local unpack_ints = struct.unpack
local sub = string.sub
-- the hinted entries read in runs: one LRANGE for neighbours (a walk to an index costs a walk
-- along the list, more than the entries between two failures of one queue), LINDEX for a lone one
local RUN_GAP = 64
local hints = {}
for j = 1, n do
  local h = unpack_ints('>i8', ints, (j - 1) * 48 + 1)
  if h >= 0 then hints[#hints + 1] = h end
end
table.sort(hints)
local window = {}
local a = 1
while a <= #hints do
  local b = a
  while b < #hints and hints[b + 1] - hints[b] <= RUN_GAP do b = b + 1 end
  if b > a then
    local lo = hints[a]
    local span = redis.call('LRANGE', failed, lo, hints[b])
    for t = a, b do window[hints[t]] = span[hints[t] - lo + 1] end
  end
  a = b + 1
end
local index, at_prefix, twins_prefix = ARGV[#ARGV - 2], ARGV[#ARGV - 1], ARGV[#ARGV]
local idx_gen, idx_n = nil, -1
if redis.call('TYPE', index).ok == 'hash' then
  local st = redis.call('HMGET', index, 'gen', 'n')
  idx_gen, idx_n = st[1], tonumber(st[2]) or -1
end
local idx_broken = false
local function indexed_mark(i, old, new)
  if not idx_gen or i >= idx_n or idx_broken then return end
  local q, was = classify(old)
  local q2, now = classify(new)
  if was or q2 ~= q or not now or redis.call('ZREM', at_prefix .. idx_gen .. ':' .. q, i) ~= 1 then
    idx_broken = true
    return
  end
  redis.call('HINCRBY', index, 'f:' .. q, -1)
  redis.call('HINCRBY', index, 'r:' .. q, 1)
  if i == idx_n - 1 then redis.call('HSET', index, 'tail', new) end
  -- a twin named after this entry's old bytes is named otherwise now
  if redis.call('ZCOUNT', twins_prefix .. idx_gen, '(' .. i, i + 200) > 0 then idx_broken = true end
end
local results = {}
local removed = 0
local queues = {}
-- a queue key of the wrong type (poison) takes no job: its entries stay failed, as they were
local lands = {}
local function lands_in(key)
  if lands[key] == nil then
    local t = redis.call('TYPE', KEYS[key]).ok
    lands[key] = t == 'none' or t == 'list'
  end
  return lands[key]
end
local p, q = 1, 1
for j = 1, n do
  local hint, lraw, lnew, poff, lpush, key = unpack_ints('>i8i8i8i8i8i8', ints, (j - 1) * 48 + 1)
  local raw = sub(raws, p, p + lraw - 1)
  p = p + lraw
  local new = nil
  if lnew >= 0 then
    new = sub(extra, q, q + lnew - 1)
    q = q + lnew
  end
  local push
  if poff >= 0 then
    push = sub(raw, poff + 1, poff + lpush)
  else
    push = sub(extra, q, q + lpush - 1)
    q = q + lpush
  end
  local cur = nil
  if hint >= 0 then
    cur = window[hint]
    if cur == nil then cur = redis.call('LINDEX', failed, hint) end
  end
  local i = nil
  if cur == raw then i = hint else i = redis.call('LPOS', failed, raw) end
  if i and not lands_in(key) then
    i = nil
  end
  if i then
    if tomb ~= '' then
      new = tomb
      removed = removed + 1
    elseif not new then
      new = sub(raw, 1, lraw - 1) .. mark
    end
    redis.call('LSET', failed, i, new)
    if tomb == '' then indexed_mark(i, raw, new) end
    if window[i] ~= nil then window[i] = new end
    redis.call('RPUSH', KEYS[key], push)
    queues[key] = true
    results[j] = 1
  else
    results[j] = 0
  end
end
for key in pairs(queues) do
  redis.pcall('SADD', KEYS[2], ARGV[4 + key])
end
if removed > 0 then
  redis.call('LREM', failed, removed, tomb)
end
if removed > 0 or idx_broken then
  redis.call('DEL', index)
end
return results
