# resque-scheduler's recurring side, for tests/interop/test_interop_resque_scheduler.py.
#
# The resque and resque-scheduler gems are not installable here (no rubygems access), so this
# file runs the few lines of resque-scheduler 5.0 that touch Redis, as they are written, on what
# they run on: redis-rb behind Redis::Namespace (Resque.redis), the json gem (Resque.encode) and
# rufus-scheduler / fugit (the schedule's timing). Each method names the resque-scheduler method
# it follows:
#   lib/resque/scheduler/scheduling_extensions.rb  set_schedule, all_schedules/persistent_schedules
#   lib/resque/scheduler.rb                        load_schedule_job, optionizate_interval_value,
#                                                  enqueue_recurring, enqueue_from_config
#   lib/resque/scheduler/lock/resilient.rb         acquire!, locked? (master? in locking.rb)
#
#   ruby resque_scheduler_app.rb COMMAND '{"url": ..., "namespace": "resque", ...}'
# prints one JSON document.
require 'json'
require 'socket'
require 'redis'
require 'redis/namespace'
require 'rufus-scheduler'

class SchedulerSide
  attr_reader :redis

  def initialize(opts)
    @opts = opts
    # Resque.redis: a Redis::Namespace over redis-rb
    @redis = Redis::Namespace.new(opts.fetch('namespace', 'resque'), redis: Redis.new(url: opts['url']))
  end

  # Resque.encode / Resque.decode (Resque::JsonCoder: the json gem)
  def encode(object)
    JSON.dump(object)
  end

  def decode(text)
    JSON.parse(text)
  end

  # scheduling_extensions.rb set_schedule
  def set_schedule(name, config)
    persist = config.delete(:persist) || config.delete('persist')
    if persist.nil? || persist
      redis.hset(:persistent_schedules, name, encode(config))
    end
    redis.sadd(:schedules_changed, name)
  end

  # scheduling_extensions.rb persistent_schedules (all_schedules without static ones)
  def all_schedules
    redis.hgetall(:persistent_schedules).tap do |h|
      h.each { |name, config| h[name] = decode(config) }
    end
  end

  # scheduler.rb optionizate_interval_value
  def optionizate_interval_value(value)
    args = value
    if args.is_a?(::Array)
      return args.first if args.size > 2 || !args.last.is_a?(::Hash)
      args[2] = args[1].each_with_object({}) { |(k, v), m| m[k.respond_to?(:to_sym) ? k.to_sym : k] = v }
      args[2][:job] = true
      args[1] = nil
    end
    args
  end

  # scheduler.rb load_schedule_job: what rufus is handed, and the job it makes of it
  def load_schedule_job(rufus, name, config, &block)
    %w[cron every].each do |interval_type|
      next unless !config[interval_type].nil? && !config[interval_type].empty?
      args = optionizate_interval_value(config[interval_type])
      args = [args, nil, job: true] if args.is_a?(::String)
      return [interval_type, args.first, rufus.send(interval_type, *args, &block)]
    end
    nil
  end

  # scheduler.rb enqueue_from_config, for a class this process cannot constantize (a Python
  # job, or a Ruby one not loaded here): Resque::Job.create(queue, klass, *params), which is
  # Resque.push(queue, class: klass.to_s, args: params): SADD queues + RPUSH queue:QUEUE
  def enqueue_from_config(job_config)
    args = job_config['args'] || job_config[:args]
    klass_name = job_config['class'] || job_config[:class]
    params = args.is_a?(Hash) ? [args] : Array(args)
    queue = job_config['queue'] || job_config[:queue]
    # Resque.validate(klass, queue)
    raise 'Resque::NoQueueError: Jobs must be placed onto a queue.' if queue.to_s.empty?
    raise 'Resque::NoClassError: Jobs must be given a class.' if klass_name.to_s.empty?
    redis.pipelined do |pipe|
      pipe.sadd(:queues, queue.to_s)
      pipe.rpush("queue:#{queue}", encode('class' => klass_name.to_s, 'args' => params))
    end
  end

  # scheduler.rb enqueue_recurring
  def enqueue_recurring(name, config)
    return unless master?
    redis.hset('delayed:last_enqueued_at', name, Time.now.to_s) # Resque.last_enqueued_at(name, Time.now.to_s)
    enqueue_from_config(config)
  end

  # locking.rb master_lock_key, lock/base.rb value
  def master_lock_key
    "#{redis.namespace}:resque_scheduler_master_lock"
  end

  def lock_value
    @opts['holder'] || [Socket.gethostname, Process.pid].join(':')
  end

  def timeout
    @opts.fetch('timeout', 60 * 3)
  end

  # lock/resilient.rb: the two scripts as it loads them (the timeout interpolated)
  def acquire!
    redis.eval(<<~LUA, keys: [master_lock_key], argv: [lock_value]).to_i == 1
      if redis.call('SETNX', KEYS[1], ARGV[1]) == 1
      then
        redis.call('EXPIRE', KEYS[1], #{timeout})
        return 1
      else
        return 0
      end
    LUA
  end

  def locked?
    redis.eval(<<~LUA, keys: [master_lock_key], argv: [lock_value]).to_i == 1
      if redis.call('GET', KEYS[1]) == ARGV[1]
      then
        redis.call('EXPIRE', KEYS[1], #{timeout})

        if redis.call('GET', KEYS[1]) == ARGV[1]
        then
          return 1
        end
      end

      return 0
    LUA
  end

  # locking.rb master?
  def master?
    acquire! || locked?
  end
end

command, raw = ARGV
opts = JSON.parse(raw)
side = SchedulerSide.new(opts)
out =
  case command
  when 'set_schedule'
    opts['schedules'].each { |name, config| side.set_schedule(name, config) }
    {}
  when 'all_schedules'
    # what Ruby's scheduler makes of each persisted schedule: rufus' job and the next times it fires
    rufus = Rufus::Scheduler.new
    begin
      side.all_schedules.to_h do |name, config|
        type, text, job = side.load_schedule_job(rufus, name, config) {}
        times = []
        if type == 'cron'
          t = Time.at(opts.fetch('from'))
          4.times { t = job.cron_line.next_time(t).to_t; times << t.to_i }
        end
        [name, { 'type' => type, 'text' => text, 'frequency' => type == 'every' ? job.frequency : nil,
                 'zone' => type == 'cron' ? job.cron_line.timezone&.name : nil,
                 'next' => times, 'config' => config }]
      end
    ensure
      rufus.shutdown
    end
  when 'enqueue_from_config'
    # one tick of a persisted schedule, as Ruby's scheduler enqueues it
    side.enqueue_from_config(side.all_schedules.fetch(opts['name']))
    {}
  when 'run_scheduler'
    # a resque-scheduler master for `seconds`: every persisted schedule loaded into a running
    # rufus-scheduler, each tick going through enqueue_recurring
    rufus = Rufus::Scheduler.new
    side.master?
    side.all_schedules.each do |name, config|
      side.load_schedule_job(rufus, name, config) { side.enqueue_recurring(name, config) }
    end
    sleep opts.fetch('seconds')
    rufus.shutdown(:wait)
    { 'master' => side.master? }
  when 'master'
    # master? asked `times` times by one process (the first takes the lock, the next extend it)
    { 'value' => side.lock_value, 'key' => side.master_lock_key,
      'master' => Array.new(opts.fetch('times', 1)) { side.master? } }
  else
    raise "unknown command #{command}"
  end
puts JSON.dump(out)
