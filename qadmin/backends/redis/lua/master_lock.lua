-- resque-scheduler's master election, as lib/resque/scheduler/lock/resilient.rb runs it: the
-- scheduler is master when `acquire!` (SETNX, then EXPIRE for the timeout) or `locked?` (the
-- value is ours: EXPIRE again, and still ours after it) says so (`master?` in locking.rb is
-- `acquire! || locked?`). Both steps in one call; a Ruby scheduler and a qadmin one exclude each
-- other because they run the same steps on the same key.
-- KEYS  1 the master lock (`Keys.master_lock`: the namespace twice, as Ruby names it)
-- ARGV  1 the holder, `HOST:PID`   2 the timeout, whole seconds (Ruby's EXPIRE takes an integer)
-- Returns 1 when the caller is master, else 0.
if redis.call('SETNX', KEYS[1], ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    return 1
  end
end
return 0
