# Resque's failure backend (lib/resque/failure/redis.rb, Resque 2.x) on its own Redis calls:
# `save` RPUSHes the entry Resque encodes, `requeue` marks `retried_at` in place with LSET and
# creates the job again, `remove` is LSET "__delete__" + LREM, `clear` DELs the list; all through
# redis-namespace "resque", as Resque sends them. The resque gem is not packaged here; its code
# for these calls is a few lines, repeated below as it is.
#
#   ruby resque_failure_app.rb REDIS_URL save QUEUE N | requeue INDEX | remove INDEX | clear
require "json"
require "redis"
require "redis/namespace"

redis = Redis::Namespace.new("resque", redis: Redis.new(url: ARGV[0]))
command = ARGV[1]

case command
when "save"
  queue, n = ARGV[2], ARGV[3].to_i
  n.times do |i|
    data = {
      failed_at: Time.now.utc.strftime("%Y/%m/%d %H:%M:%S %Z"),
      payload: { "class" => "Archive", "args" => [i, queue] },
      exception: "ArgumentError",
      error: "boom #{i}",
      backtrace: ["/srv/app/jobs/archive.rb:10:in `perform'"],
      worker: "web1:#{Process.pid}:#{queue}",
      queue: queue
    }
    redis.rpush(:failed, JSON.generate(data))
  end
when "requeue"
  id = ARGV[2].to_i
  item = JSON.parse(redis.lindex(:failed, id))
  item["retried_at"] = Time.now.strftime("%Y/%m/%d %H:%M:%S")
  redis.lset(:failed, id, JSON.generate(item))
  redis.sadd(:queues, item["queue"])
  redis.rpush("queue:#{item['queue']}", JSON.generate("class" => item["payload"]["class"], "args" => item["payload"]["args"]))
when "remove"
  id = ARGV[2].to_i
  redis.lset(:failed, id, "__delete__")
  redis.lrem(:failed, 1, "__delete__")
when "clear"
  redis.del(:failed)
else
  abort "unknown command #{command}"
end
