-- @failed_entry.lua: what a failure entry is to qadmin's index of `failed` (failed_index.lua),
-- included at the top of the scripts that keep that index (`scripts.script_with`).
--
-- classify(raw) -> queue, retried: the top-level `queue` member ('' when there is none or the
-- entry is not a JSON object) and whether a `retried_at` marks it, as listings read it.
-- The few bytes Resque's shape puts last are read first; cjson decodes only the other entries.
local FAILED_QUEUE_NEEDLE = ',"queue":"'

local function failed_tail_queue(raw)
  if string.byte(raw, 1) ~= 123 then return nil end -- '{'
  local last = nil
  local p = 1
  while true do
    local s = string.find(raw, FAILED_QUEUE_NEEDLE, p, true)
    if not s then break end
    last = s
    p = s + 1
  end
  if not last then return nil end
  return string.match(raw, '^([^"\\]*)"}$', last + #FAILED_QUEUE_NEEDLE)
end

local function classify(raw)
  if not string.find(raw, '"retried_at"', 1, true) then
    local queue = failed_tail_queue(raw)
    if queue ~= nil then return queue, false end
  end
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' then
    local queue = ''
    if type(entry.queue) == 'string' then queue = entry.queue end
    -- marked as a listing reads the mark (`records.failed_rec`): any value but an empty one
    local mark = entry.retried_at
    local empty = mark == nil or mark == cjson.null or mark == false or mark == ''
      or (type(mark) == 'table' and next(mark) == nil)
    return queue, not empty
  end
  return '', false
end
