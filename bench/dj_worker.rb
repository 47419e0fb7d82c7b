# The real delayed_job worker for bench/worker_throughput.py (Debian ruby-delayed-job-active-record).
#
#   ruby bench/dj_worker.rb handlers            YAML handlers of the bench jobs, as JSON
#   ruby bench/dj_worker.rb work DATABASE       Delayed::Worker#work_off until the table is empty
#
# SQLite with the settings qadmin's engine uses, so that both sides commit with equal durability:
# the file is in WAL mode already (a persistent setting), synchronous=NORMAL is set per connection
# below (Rails 6.1's adapter sets neither), wal_autocheckpoint stays SQLite's 1000 pages on both
# sides, and the sqlite3 gem runs the same system libsqlite3 as Python's sqlite3 (Debian's build,
# secure_delete on). A busy timeout lets two workers share the file. Logging is off, as qadmin's
# per-job lines are off by default.
require "json"
require "yaml"
require "logger"

NoopJob = Struct.new(:n) do
  def perform; end
end

# appends the time it ran: see bench/stamps.py
StampJob = Struct.new(:path) do
  def perform
    File.open(path, "a") { |f| f.write("#{Time.now.to_f}\n") }
  end
end

case ARGV.fetch(0)
when "handlers"
  puts JSON.generate({"noop" => NoopJob.new(0).to_yaml, "stamp" => StampJob.new("PATH").to_yaml})
when "work"
  require "active_record"
  require "delayed_job"
  require "delayed_job_active_record"
  ActiveRecord::Base.logger = nil
  ActiveRecord::Base.establish_connection(adapter: "sqlite3", database: ARGV.fetch(1), timeout: 60_000)
  ActiveRecord::Base.connection.execute("PRAGMA synchronous=NORMAL")
  Delayed::Worker.logger = Logger.new(nil)
  Delayed::Worker.sleep_delay = 0
  Delayed::Worker.destroy_failed_jobs = false
  worker = Delayed::Worker.new(quiet: true)
  total = 0
  loop do
    ok, failed = worker.work_off(1000)
    total += ok + failed
    break if ok + failed == 0
  end
  puts JSON.generate({"done" => total})
end
