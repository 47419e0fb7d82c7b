-- Resque's push (docs/compatibility.md §1.4): the queue's name into `queues`, the payloads at its tail,
-- in one call.
-- KEYS  1 queues set   2 queue:NAME
-- ARGV  1 NAME   then the payloads
-- A `queues` key of the wrong type (poison) does not stop the push: the queue is found by its key.
local n = redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
redis.pcall('SADD', KEYS[1], ARGV[1])
return n
