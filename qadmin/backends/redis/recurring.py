"""Recurring schedules on Redis, in resque-scheduler's own keys (docs/compatibility.md §2.4), so a
schedule set in Ruby (`Resque.set_schedule`) shows up here and one saved here is run by Ruby's
scheduler:

- an enabled schedule is resque-scheduler's persisted config (`persistent_schedules`, name -> JSON,
  `schedule_config.py`); every save and removal adds its name to `schedules_changed`, as
  `set_schedule` / `remove_schedule` do, so a running Ruby scheduler reloads it;
- a disabled one is the same JSON in `qadmin:schedules:disabled`, where Ruby does not look;
- a run is recorded where Ruby records one (`delayed:last_enqueued_at`, `Time#to_s`), and qadmin
  remembers the last tick it fired and its last job (`qadmin:schedules:ticks`, `:runs`);
- the scheduler that may fire is the holder of resque-scheduler's master lock (`lua/master_lock.lua`),
  so Ruby's and qadmin's never both fire; among qadmin's, `lua/schedule_fire.lua`'s
  compare-and-set keeps each tick to one job anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from qadmin.backends.redis.enqueue import _refuse_priority
from qadmin.backends.redis.ids import TWIN_SCAN, make_id
from qadmin.backends.redis.records import name as rename
from qadmin.backends.redis.records import queue_rec
from qadmin.backends.redis.schedule_config import (
    UnreadableConfig,
    config_text,
    implicit_queue,
    parse_time_to_s,
    read_config,
    refuse_unportable,
    time_to_s,
)
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.view import View
from qadmin.errors import ScheduleNotFound, UsageError
from qadmin.job import Job, NewJob, utcnow
from qadmin.recurring import SOURCE_RESQUE, RecurringEntry, Schedule

_log = logging.getLogger("qadmin.recurring")

#: what `lua/schedule_fire.lua` answers
_FIRED, _ARMED, _GONE = 1, -1, -2
#: resque-scheduler's own setting of the lock's name, honoured so both name the same key
LOCK_PREFIX_ENV = "RESQUE_SCHEDULER_MASTER_LOCK_PREFIX"


def _epoch_text(at: datetime) -> str:
    seconds = at.timestamp()
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def _from_epoch(text: bytes | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), UTC) if text is not None else None
    except (ValueError, OverflowError):
        return None


def _json_object(text: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text is not None else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _timing(s: Schedule) -> tuple[str | None, float | None, str]:
    return s.cron, s.every, s.timezone


class _Memory:
    """What the hashes remember of one schedule's runs."""

    def __init__(self, tick: bytes | None, ran: bytes | None, run: bytes | None) -> None:
        self.last_tick = _from_epoch(tick)
        self.last_run_at = parse_time_to_s(ran) if ran is not None else None
        ours = _json_object(run)
        # qadmin's last job is the last one only while the last run recorded is qadmin's
        mine = ran is not None and ours.get("at") == ran.decode("utf-8", "replace")
        job = ours.get("job")
        self.last_job_id = job if mine and isinstance(job, str) else None

    def entry(self, schedule: Schedule) -> RecurringEntry:
        return RecurringEntry(schedule, self.last_run_at, self.last_tick, self.last_job_id)


class Recurring:
    """`schedules`, `save_schedule`, `remove_schedule`, `fire_schedule` and `schedule_leader`.
    `encode` is the enqueue's own payload encoder (`Enqueuer.encode`): a tick's job is the payload
    qadmin's enqueue writes."""

    def __init__(self, server: Server, encode: Callable[[NewJob, datetime], bytes]) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.scripts = server.scripts
        self.encode = encode
        self.lock_key = self.keys.master_lock(os.environ.get(LOCK_PREFIX_ENV, ""))

    # --- reading ------------------------------------------------------------------------------
    def _hashes(self, *keys: str) -> list[dict[bytes, bytes]]:
        """Whole hashes; one of another type (no qadmin or Ruby process wrote it) reads as empty,
        logged, so the other schedules are still listed."""
        with self.server.wrap():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            values = pipe.execute(raise_on_error=False)
        out = []
        for key, value in zip(keys, values, strict=True):
            if isinstance(value, Exception):
                _log.warning("%s is not readable as a hash (%s): no schedules read from it", key, value)
                value = {}
            out.append(value)
        return out

    def schedules(self, now: datetime) -> list[RecurringEntry]:
        k = self.keys
        enabled, disabled, ticks, ran, runs, meta = self._hashes(
            k.persistent_schedules,
            k.schedules_disabled,
            k.schedule_ticks,
            k.last_enqueued_at,
            k.schedule_runs,
            k.schedule_meta,
        )
        configs = {**{n: (raw, False) for n, raw in disabled.items()}, **{n: (raw, True) for n, raw in enabled.items()}}
        out = []
        for raw_name, (raw, on) in configs.items():
            schedule = self._read(raw_name, raw, on, meta.get(raw_name))
            if schedule is not None:
                memory = _Memory(ticks.get(raw_name), ran.get(raw_name), runs.get(raw_name))
                out.append(memory.entry(schedule))
        return sorted(out, key=lambda e: e.schedule.name)

    def _read(self, raw_name: bytes, raw: bytes, enabled: bool, meta_text: bytes | None) -> Schedule | None:
        """The schedule a stored config is, or None (logged) for one that cannot be read as one."""
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            _log.warning("recurring schedule %r left out: its name is not UTF-8", raw_name)
            return None
        meta = _json_object(meta_text)
        ours = meta.get("sha1") == hashlib.sha1(raw).hexdigest()
        written_by = meta.get("source")
        source = written_by if ours and isinstance(written_by, str) else SOURCE_RESQUE
        try:
            return read_config(
                name, raw, enabled=enabled, source=source, queue_given=not (ours and meta.get("implicit_queue"))
            )
        except UnreadableConfig as exc:
            _log.warning("recurring schedule %r left out: its resque-scheduler config is not readable (%s)", name, exc)
            return None

    def _stored(self, name: str) -> tuple[bytes | None, bool, bytes | None, _Memory]:
        """One schedule's config as stored, whether it is enabled, its meta and its memory."""
        k = self.keys
        with self.server.wrap():
            pipe = self.client.pipeline(transaction=False)
            for key in (k.persistent_schedules, k.schedules_disabled, k.schedule_meta):
                pipe.hget(key, name)
            for key in (k.schedule_ticks, k.last_enqueued_at, k.schedule_runs):
                pipe.hget(key, name)
            values = [None if isinstance(v, Exception) else v for v in pipe.execute(raise_on_error=False)]
        on, off, meta, tick, ran, run = values
        return (on if on is not None else off), on is not None, meta, _Memory(tick, ran, run)

    # --- writing ------------------------------------------------------------------------------
    def save(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        refuse_unportable(schedule)
        old_raw, was_enabled, old_meta, memory = self._stored(schedule.name)
        old = self._read(schedule.name.encode(), old_raw, was_enabled, old_meta) if old_raw is not None else None
        meta = ""
        if old is not None and replace(old, enabled=schedule.enabled, source=schedule.source) == schedule:
            # only switched on or off: the config moves as it is, keys qadmin does not model
            # (rufus' `every` options, a description's bytes) kept for Ruby's scheduler
            assert old_raw is not None
            raw = old_raw
        else:
            queue = schedule.queue or implicit_queue(schedule.job_class)
            raw = config_text(schedule, queue)
            meta = json.dumps(
                {"source": schedule.source, "sha1": hashlib.sha1(raw).hexdigest(), "implicit_queue": not schedule.queue}
            )
        rearm = schedule.enabled and (old is None or not was_enabled or _timing(old) != _timing(schedule))
        k = self.keys
        stored = self.server.call(
            self.scripts.schedule_save,
            [k.persistent_schedules, k.schedules_disabled, k.schedules_changed, k.schedule_ticks, k.schedule_meta],
            [schedule.name, raw, int(schedule.enabled), _epoch_text(schedule.previous_tick(now)), int(rearm), meta],
        )
        memory.last_tick = _from_epoch(stored)
        return memory.entry(schedule)

    def remove(self, name: str) -> bool:
        """Forget it where Ruby and qadmin keep it; `schedules_changed` tells a Ruby scheduler
        to drop it, as `remove_schedule` does."""
        k = self.keys
        with self.server.wrap():
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(k.persistent_schedules, name)
            pipe.hdel(k.schedules_disabled, name)
            pipe.sadd(k.schedules_changed, name)
            for key in (k.schedule_ticks, k.schedule_runs, k.schedule_meta, k.last_enqueued_at):
                pipe.hdel(key, name)
            gone = pipe.execute()
        return bool(gone[0] or gone[1])

    def fire(self, name: str, tick: datetime | None, new: NewJob, now: datetime) -> Job | None:
        if new.run_at is not None or new.unique is not None:
            raise UsageError(f"schedule {name!r}: a recurring job is enqueued at its tick, without run_at or unique")
        _refuse_priority([new])
        payload = self.encode(new, now)
        queue = new.queue
        rec = queue_rec(self.keys.queue(queue), queue, payload, -1)
        k = self.keys
        out = self.server.call(
            self.scripts.schedule_fire,
            [
                k.persistent_schedules,
                k.schedules_disabled,
                k.schedule_ticks,
                k.last_enqueued_at,
                k.schedule_runs,
                k.queues,
                k.queue(queue),
                k.locked,
                k.workers,
            ],
            [
                name,
                "" if tick is None else _epoch_text(tick),
                payload,
                time_to_s(now),
                str(rec.job.id),
                queue,
                TWIN_SCAN,
            ],
        )
        if out[0] == _GONE and tick is None:
            raise ScheduleNotFound(name)
        if out[0] != _FIRED:
            return None
        foreign, before, held, runs = out[1:]
        if foreign:  # a Ruby or PHP worker may hold a twin: counted as listings count them
            with self.server.wrap():
                counted = View(self.server, utcnow()).reader.lock_twins()[1][(queue, payload)]
            if counted != held:
                named = json.dumps({"at": time_to_s(now), "job": make_id(queue, rec.token, None, before + counted + 1)})
                self.server.run_unit(("HSETEQ", [k.schedule_runs], [name, runs, named]))
                held = counted
        job: Job = rename(rec, before + held + 1).job
        return job

    def leader(self, holder: str, ttl: float) -> bool:
        """resque-scheduler's `master?` (`lua/master_lock.lua`) for `holder` ("HOST:PID", as Ruby's
        lock value is), the lock kept for `ttl` seconds, rounded up to whole seconds as Ruby's is."""
        seconds = max(1, math.ceil(ttl))
        return bool(self.server.call(self.scripts.master_lock, [self.lock_key], [holder, seconds]) == 1)
