-- Count stored entries per queue, server side (no entry crosses the network).
--
-- Failed list:     KEYS[1] the list; ARGV = {'list', first, last}
--   Returns {queue, failed, retried, ...}: an entry with a non-null top-level `retried_at` was
--   retried (qadmin: history of a job, counted in no state); one that is not a JSON object counts as failed in queue "".
-- Delayed lists:   KEYS[1] delayed_queue_schedule; ARGV = {'delayed', first, last, prefix, now}
--   reads the delayed lists (`prefix .. timestamp`) of a rank window of timestamps.
--   Returns {queue, due, later, ...}; an item without a string `queue` counts in queue "";
--   a delayed list of the wrong type counts once, under NUL .. its key.
--
-- Every entry goes through one `tally`, which reads the few bytes it needs when the entry has
-- the shape every Resque writer gives it (`"queue":"NAME"` as its last member, no `retried_at`
-- anywhere) and decodes the JSON only otherwise: cjson costs about fifteen times more.
local mode = ARGV[1]
local counts = {}
local order = {}

local QUEUE_NEEDLE = ',"queue":"'

-- The value of the top-level `queue` member when it is the object's last member, written plainly.
-- The last `,"queue":"` followed by `NAME"}` up to the end (NAME without quotes or backslashes)
-- can only be that member: a quote not preceded by a backslash always delimits a string.
local function tail_queue(raw)
  if string.byte(raw, 1) ~= 123 then return nil end -- '{'
  local last = nil
  local p = 1
  while true do
    local s = string.find(raw, QUEUE_NEEDLE, p, true)
    if not s then break end
    last = s
    p = s + 1
  end
  if not last then return nil end
  return string.match(raw, '^([^"\\]*)"}$', last + #QUEUE_NEEDLE)
end

local function tally(raw, second)
  local queue = nil
  if not string.find(raw, '"retried_at"', 1, true) then
    queue = tail_queue(raw)
  end
  if queue == nil then
    queue = ''
    second = second or false
    local ok, entry = pcall(cjson.decode, raw)
    if ok and type(entry) == 'table' then
      if type(entry.queue) == 'string' then queue = entry.queue end
      if mode == 'list' then
        second = entry.retried_at ~= nil and entry.retried_at ~= cjson.null
      end
    end
  end
  local c = counts[queue]
  if not c then
    c = {0, 0}
    counts[queue] = c
    order[#order + 1] = queue
  end
  if second then c[2] = c[2] + 1 else c[1] = c[1] + 1 end
end

if mode == 'list' then
  for _, raw in ipairs(redis.call('LRANGE', KEYS[1], ARGV[2], ARGV[3])) do
    tally(raw, false)
  end
else
  local now = tonumber(ARGV[5])
  local stamps = redis.call('ZRANGE', KEYS[1], ARGV[2], ARGV[3], 'WITHSCORES')
  for i = 1, #stamps, 2 do
    local later = tonumber(stamps[i + 1]) > now
    local items = redis.pcall('LRANGE', ARGV[4] .. stamps[i], 0, -1)
    if type(items) == 'table' and items.err then
      -- a list of the wrong type (poison): one unreadable entry, named by its key after a NUL
      local name = '\0' .. ARGV[4] .. stamps[i]
      if not counts[name] then
        counts[name] = {0, 0}
        order[#order + 1] = name
      end
      if later then counts[name][2] = counts[name][2] + 1 else counts[name][1] = counts[name][1] + 1 end
    else
      for _, raw in ipairs(items) do
        tally(raw, later)
      end
    end
  end
end

local out = {}
for _, queue in ipairs(order) do
  out[#out + 1] = queue
  out[#out + 1] = counts[queue][1]
  out[#out + 1] = counts[queue][2]
end
return out
