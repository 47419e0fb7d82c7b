"""Every key the Redis backend reads or writes, namespaced (docs/compatibility.md §1.2, §2.1, §3.3, §8.8)."""

from __future__ import annotations


class Keys:
    """Every key, namespaced. Resque's own keys as docs/compatibility.md §1.2, §2.1 and §3.3 name
    them; qadmin's private keys under `qadmin:` (outside `queue:` and never in the `queues` set,
    §8.8)."""

    def __init__(self, namespace: str) -> None:
        ns = namespace or ""
        if ns and not ns.endswith(":"):
            ns += ":"
        self.ns = ns
        self.queues = ns + "queues"
        self.failed = ns + "failed"
        self.workers = ns + "workers"
        self.heartbeat = ns + "workers:heartbeat"
        self.processed = ns + "stat:processed"
        self.failed_count = ns + "stat:failed"
        self.schedule = ns + "delayed_queue_schedule"
        self.pause_all = ns + "pause-all-workers"
        self.pause_prefix = ns + "pause:queue:"
        self.queue_prefix = ns + "queue:"
        self.delayed_prefix = ns + "delayed:"
        # qadmin's own
        self.locked = ns + "qadmin:locked"
        self.finished = ns + "qadmin:finished"
        self.qworkers = ns + "qadmin:workers"
        self.unique = ns + "qadmin:unique"
        self.paused = ns + "qadmin:paused"
        self.audit = ns + "qadmin:audit"
        self.audit_seq = ns + "qadmin:audit:seq"
        #: jobs of dead qadmin workers given back by live ones (`WorkerSession.rescue`), ever
        self.rescued = ns + "qadmin:rescued"
        #: set (NX, expiring) by the worker whose turn it is to prune
        self.last_prune = ns + "qadmin:last_prune"
        #: job id -> an operator's cancel of the job a qadmin worker runs (`redis/cancel.py`)
        self.cancels = ns + "qadmin:cancels"
        #: job id -> a job waiting for an external service, and the ids by deadline (`redis/waiting.py`)
        self.waiting = ns + "qadmin:waiting"
        self.waiting_deadlines = ns + "qadmin:waiting:deadlines"
        # recurring schedules (`redis/recurring.py`): resque-scheduler's keys (§2.4), then qadmin's memory
        self.persistent_schedules = ns + "persistent_schedules"
        self.schedules_changed = ns + "schedules_changed"
        self.last_enqueued_at = ns + "delayed:last_enqueued_at"
        #: name -> config of a schedule disabled through qadmin, kept out of Ruby's scheduler's sight
        self.schedules_disabled = ns + "qadmin:schedules:disabled"
        #: name -> the last tick fired (epoch seconds), what `fire_schedule` compares and sets
        self.schedule_ticks = ns + "qadmin:schedules:ticks"
        #: name -> {"at": the Time#to_s text qadmin last wrote to `delayed:last_enqueued_at`, "job": its job's id}
        self.schedule_runs = ns + "qadmin:schedules:runs"
        #: name -> {"source", "sha1" of the config bytes qadmin wrote, "implicit_queue"}
        self.schedule_meta = ns + "qadmin:schedules:meta"
        #: queue -> "DIGEST EPOCH": a queue's head payload and when a worker first saw it there
        #: (`redis/history.py`: the latency of payloads that carry no enqueue time)
        self.history_heads = ns + "qadmin:history:heads"
        #: qadmin's index of `failed` (`redis/failed_index.py`): the hash checked against the list,
        #: the set of its per-queue and twins keys, the counter naming each build, and those keys'
        #: prefixes (GEN:QUEUE, GEN appended)
        self.failed_index = ns + "qadmin:failed:index"
        self.failed_index_keys = ns + "qadmin:failed:index:keys"
        self.failed_index_gen = ns + "qadmin:failed:index:gen"
        self.failed_at_prefix = ns + "qadmin:failed:at:"
        self.failed_twins_prefix = ns + "qadmin:failed:twins:"

    def master_lock(self, prefix: str = "") -> str:
        """resque-scheduler's master lock. Ruby builds the name with the namespace in it
        (`"#{Resque.redis.namespace}:#{prefix}resque_scheduler_master_lock"`, lib/resque/scheduler/
        locking.rb) and sends it through its namespaced client, so the raw key holds the namespace
        twice (`resque:resque:resque_scheduler_master_lock`, §2.4)."""
        return f"{self.ns}{self.ns[:-1]}:{prefix + ':' if prefix else ''}resque_scheduler_master_lock"

    def attempts(self, job: str) -> str:
        """A job's runs that did not succeed (`redis/attempts.py`), by its plain `QUEUE:TOKEN` id."""
        return f"{self.ns}qadmin:attempts:{job}"

    #: the rules with a stored alert incident, and each one's hash (`redis/alerts.py`)
    def alerts(self) -> str:
        return f"{self.ns}qadmin:alerts"

    def alert(self, rule: str) -> str:
        return f"{self.ns}qadmin:alerts:{rule}"

    def queue(self, name: str) -> str:
        return self.queue_prefix + name

    def delayed(self, ts: int | str) -> str:
        return f"{self.delayed_prefix}{ts}"

    @staticmethod
    def stamp_member(ts: int | str) -> str:
        """How a `timestamps:` set names a delayed list: a value, so without the namespace."""
        return f"delayed:{ts}"

    def timestamps(self, item: bytes) -> bytes:
        return self.ns.encode() + b"timestamps:" + item

    def pause(self, name: str) -> str:
        return self.pause_prefix + name

    def worker(self, rid: str) -> str:
        return self.ns + "worker:" + rid

    def started(self, rid: str) -> str:
        return self.ns + "worker:" + rid + ":started"

    def stat(self, name: str, rid: str) -> str:
        return f"{self.ns}stat:{name}:{rid}"

    def status(self, job_id: str, prefix: str | None) -> str:
        return f"{self.ns}job:{prefix + '_' if prefix else ''}{job_id}:status"

    def audit_jobs(self, entry_id: int | str) -> str:
        return f"{self.ns}qadmin:audit:{entry_id}:jobs"

    def throughput(self, minute: int) -> str:
        return f"{self.ns}qadmin:throughput:{minute}"

    def history(self, resolution: str, start: int) -> str:
        """One history bucket (`redis/history.py`): a hash of every queue's and class's counts in
        the minute or hour starting at epoch second `start`."""
        return f"{self.ns}qadmin:history:{resolution}:{start}"
