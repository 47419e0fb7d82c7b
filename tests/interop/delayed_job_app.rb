# A tiny delayed_job application for qadmin's interop tests: the real delayed_job and
# delayed_job_active_record gems (Debian packages), a real ActiveRecord connection, a real
# Delayed::Worker. Nothing here knows about qadmin.
#
#   ruby delayed_job_app.rb setup CONFIG_JSON   create the table (the gem's own generator
#                                               migration), enqueue every job kind, let a
#                                               worker fail some of them, leave others waiting
#   ruby delayed_job_app.rb work CONFIG_JSON    one Delayed::Worker#work_off pass
#
# CONFIG_JSON: {"db": {ActiveRecord connection spec}, "dir": "<dir for side effects>"}.
# Each job appends "<label> <event>" to DIR/side_effects.log; the "flaky" ones raise until
# DIR/flag exists. stdout gets one JSON line: {"ids": {label: id}, "work": [ok, failed], ...}.

require "json"
require "erb"
require "logger"
require "socket"
require "active_record"
require "delayed_job"
require "delayed_job_active_record"

AJ_ERROR = begin
  require "active_job"
  require "active_job/queue_adapters/delayed_job_adapter"
  require "global_id"
  nil
rescue LoadError => e
  e.message
end

CONFIG = JSON.parse(ARGV.fetch(1))
DIR = CONFIG.fetch("dir")
LOG = File.join(DIR, "side_effects.log")
FLAG = File.join(DIR, "flag")

def side_effect(label, event)
  File.open(LOG, "a") { |f| f.puts("#{label} #{event}") }
end

# raises (as a job's own failure would) until the test creates the flag file
def flaky!(label)
  side_effect(label, "attempt")
  raise ArgumentError, "#{label}: flag file missing" unless File.exist?(FLAG)
  side_effect(label, "ok")
end

ActiveRecord::Base.logger = nil
ActiveRecord::Migration.verbose = false
ActiveRecord::Base.establish_connection(CONFIG.fetch("db").transform_keys(&:to_sym))
Delayed::Worker.logger = Logger.new(File.join(DIR, "delayed_job.log"))
Delayed::Worker.destroy_failed_jobs = false
Delayed::Worker.max_attempts = 1
Delayed::Worker.sleep_delay = 0

class User < ActiveRecord::Base
  include GlobalID::Identification if defined?(GlobalID::Identification)

  def send_welcome(log_label, greeting)
    side_effect(log_label, "welcome #{name} #{greeting}")
  end

  def flaky_welcome(log_label)
    flaky!(log_label)
  end
end

# a plain Ruby object job
class NewsletterJob
  def initialize(label, text, emails)
    @label = label
    @text = text
    @emails = emails
  end

  def perform
    side_effect(@label, "sent #{@emails.size}")
  end
end

# a job that fails with its own exception class and never succeeds
class PaymentDeclined < StandardError; end

class ChargeJob
  def initialize(order_id)
    @order_id = order_id
  end

  def perform
    raise PaymentDeclined, "card declined for order #{@order_id}"
  end
end

NewsletterStructJob = Struct.new(:label, :text, :emails) do
  def perform
    side_effect(label, "struct sent #{emails.size}")
  end
end

FlakyStructJob = Struct.new(:label) do
  def perform
    flaky!(label)
  end
end

# fails once, then delayed_job reschedules it a day later (attempts < its max_attempts)
RetryLaterJob = Struct.new(:label) do
  def perform
    raise IOError, "#{label}: upstream timed out"
  end

  def max_attempts
    5
  end

  def reschedule_at(now, _attempts)
    now + 86_400
  end
end

# exists when enqueued, gone when the worker runs: a real "Job failed to load"
GhostJob = Struct.new(:label) do
  def perform; end
end

class Reporter
  def self.generate(label, kind, options)
    side_effect(label, "report #{kind} #{options[:format]} #{options[:limit]}")
  end

  def self.flaky(label)
    flaky!(label)
  end
end

if AJ_ERROR.nil?
  GlobalID.app = "interop"
  ActiveJob::Base.queue_adapter = :delayed_job
  ActiveJob::Base.logger = Logger.new(nil)

  class GuestsCleanupJob < ActiveJob::Base
    queue_as :maintenance

    def perform(label, guest, count, user)
      side_effect(label, "cleanup #{guest} #{count} #{user.name}")
    end
  end

  class FlakyActiveJob < ActiveJob::Base
    queue_as :maintenance

    def perform(label, _user)
      flaky!(label)
    end
  end
end

def migrate!
  dir = Gem::Specification.find_by_name("delayed_job_active_record").gem_dir
  template = File.read(File.join(dir, "lib/generators/delayed_job/templates/migration.rb"))
  version = "[#{ActiveRecord::VERSION::MAJOR}.#{ActiveRecord::VERSION::MINOR}]"
  eval(ERB.new(template).result_with_hash(migration_version: version)) # rubocop:disable Security/Eval
  CreateDelayedJobs.new.migrate(:up)
  ActiveRecord::Schema.define do
    create_table :users do |t|
      t.string :name
      t.string :email
      t.timestamps
    end
  end
end

# the handler of a job the worker reserved and then abandoned (its process died)
def reserve_as(name)
  worker = Delayed::Worker.new(quiet: true)
  worker.name = name
  Delayed::Job.reserve(worker)
end

def dead_pid
  pid = Process.spawn("true")
  Process.wait(pid)
  pid
end

def setup!
  migrate!
  ids = {}
  user = User.create!(name: "Ann", email: "ann@example.com")

  # -- these fail for real in the work_off below
  ids["flaky_struct"] = Delayed::Job.enqueue(FlakyStructJob.new("flaky_struct")).id
  ids["flaky_class_method"] = Reporter.delay.flaky("flaky_class_method").id
  ids["flaky_record_method"] = user.delay(queue: "mail").flaky_welcome("flaky_record_method").id
  ids["charge"] = Delayed::Job.enqueue(ChargeJob.new(1001), queue: "billing").id
  ids["retry_later"] = Delayed::Job.enqueue(RetryLaterJob.new("retry_later")).id
  ids["ghost"] = Delayed::Job.enqueue(GhostJob.new("ghost")).id
  if AJ_ERROR.nil?
    FlakyActiveJob.perform_later("flaky_active_job", user)
    ids["flaky_active_job"] = Delayed::Job.last.id
  end
  Object.send(:remove_const, :GhostJob)
  first = work_off_all

  # -- locks: one held by a dead process of this host, one by a live process (pid 1)
  host = Socket.gethostname
  ids["stale_lock"] = Delayed::Job.enqueue(NewsletterStructJob.new("stale_lock", "x", ["s@example.com"]),
                                           priority: -2).id
  reserve_as("delayed_job.0 host:#{host} pid:#{dead_pid}")
  ids["live_lock"] = Delayed::Job.enqueue(NewsletterStructJob.new("live_lock", "y", ["l@example.com"]),
                                          priority: -1).id
  reserve_as("host:#{host} pid:1")

  # -- these wait for the next worker run
  ids["newsletter"] = Delayed::Job.enqueue(
    NewsletterJob.new("newsletter", "héllo wörld ✓", ["a@example.com", "b@example.com"]),
    queue: "mail", priority: 5
  ).id
  ids["newsletter_struct"] = Delayed::Job.enqueue(
    NewsletterStructJob.new("newsletter_struct", "lorem ipsum", ["c@example.com"])
  ).id
  ids["report"] = Reporter.delay(queue: "reports").generate("report", :daily, { format: "csv", limit: 5 }).id
  ids["welcome"] = user.delay.send_welcome("welcome", "hi").id
  ids["later"] = Delayed::Job.enqueue(NewsletterStructJob.new("later", "z", []), run_at: Time.now + 86_400).id
  if AJ_ERROR.nil?
    GuestsCleanupJob.perform_later("cleanup", "guest", 42, user)
    ids["cleanup"] = Delayed::Job.last.id
  end
  { ids: ids, work: first, user_id: user.id, host: host, active_job: AJ_ERROR }
end

# work_off stops early after a job that failed to load, so run passes until one finds nothing
def work_off_all
  total = [0, 0]
  5.times do
    worker = Delayed::Worker.new(quiet: true)
    ok, failed = worker.work_off(100)
    total = [total[0] + ok, total[1] + failed]
    break if Delayed::Job.where(failed_at: nil, locked_at: nil).where("run_at <= ?", Time.now.utc).none?
  end
  total
end

def work!
  { work: work_off_all }
end

result = case ARGV.fetch(0)
         when "setup" then setup!
         when "work" then work!
         else abort("unknown command #{ARGV[0]}")
         end
puts JSON.generate(result)
