# Sidekiq (OSS, Debian's ruby-sidekiq) for bench/peers/sidekiq.py: the no-op and stamp jobs, and a fill.
#
#   sidekiq -r ./bench/sidekiq_worker.rb -c 1 -q default     # the worker (BENCH_PEER_URL: the Redis URL)
#   ruby bench/sidekiq_worker.rb fill URL N K STAMP_PATH      # K stamp jobs, N - 2K no-ops, K stamp jobs
#
# A stamp appends the time it ran to STAMP_PATH as bench/stamps.py does (a float, one per line).
require "sidekiq"

# Debian pairs Sidekiq 6.4 with redis-rb 4.8, which warns on stderr about Sidekiq's positional BRPOP
# timeout at every fetch (once per job): a packaging mismatch, not Sidekiq's cost
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

FILLING = $PROGRAM_NAME == __FILE__ && ARGV[0] == "fill"
REDIS_URL = FILLING ? ARGV[1] : ENV.fetch("BENCH_PEER_URL")

Sidekiq.configure_client { |config| config.redis = { url: REDIS_URL } }
Sidekiq.configure_server do |config|
  config.redis = { url: REDIS_URL }
  # Sidekiq logs every job's start and end at INFO: the bench's peers all run with warnings only
  config.logger.level = Logger::WARN
end

class NoopJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(_i); end
end

class StampJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(path)
    File.open(path, File::WRONLY | File::APPEND | File::CREAT, 0o644) do |f|
      f.write(format("%.6f\n", Time.now.to_f))
    end
  end
end

if FILLING
  n = Integer(ARGV[2])
  k = Integer(ARGV[3])
  path = ARGV[4]
  # push_bulk: Sidekiq's bulk enqueue, one LPUSH per call (the queue is FIFO: LPUSH, BRPOP)
  Sidekiq::Client.push_bulk("class" => StampJob, "args" => [[path]] * k)
  (0...(n - 2 * k)).each_slice(1000) do |slice|
    Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] })
  end
  Sidekiq::Client.push_bulk("class" => StampJob, "args" => [[path]] * k)
end
