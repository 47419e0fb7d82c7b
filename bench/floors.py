"""The floor: the least one Python process must do per job on each backend, written by hand.

    python -m bench.floors sqlite|postgresql|postgresql-tx|redis URL

Each loop claims one job, runs it, and acknowledges it, until the queue is empty:

* SQLite: `BEGIN IMMEDIATE; SELECT` the next ready row `; UPDATE` its lock `; COMMIT`, then
  `DELETE` it (same WAL / synchronous=NORMAL settings as qadmin's engine);
* PostgreSQL: one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`
  round trip to claim, one `DELETE` to acknowledge (autocommit, psycopg prepared statements);
* PostgreSQL, the minimal loop (`postgresql-tx`): in one transaction, `SELECT` the next ready row
  `FOR UPDATE SKIP LOCKED LIMIT 1` along qadmin's claim index, run it, `DELETE` it, `COMMIT`
  (prepared). No lock is written: the row lock held by the open transaction is the claim, so
  a SIGKILL reruns the job as qadmin's would, but the job runs inside the transaction;
* Redis: `LMOVE` from the queue into a processing list, then `LREM` it from there.

No decoding beyond `json.loads`, no heartbeats, no outcome records, no hooks: whatever qadmin spends
above this is its own overhead. Jobs are looked up by their dotted class path, as qadmin does.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

OWNER = f"host:{socket.gethostname()} pid:{os.getpid()}"
_functions: dict[str, Callable[..., Any]] = {}


def call(payload: str | bytes) -> None:
    job = json.loads(payload)
    name = job["class"]
    fn = _functions.get(name)
    if fn is None:
        module, _, attr = name.rpartition(".")
        fn = _functions[name] = getattr(importlib.import_module(module), attr)
    fn(*job.get("args", ()), **job.get("kwargs", {}))


def sqlite_loop(url: str) -> int:
    import sqlite3

    path = url.split("sqlite:///", 1)[1]
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    done = 0
    while True:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        conn.execute("BEGIN IMMEDIATE")
        # unary + keeps SQLite off the failed_at / locked_at indexes, which it would otherwise pick
        # and then sort every ready row (O(queue) per claim); it walks delayed_jobs_priority instead
        row = conn.execute(
            "SELECT id, handler FROM delayed_jobs WHERE +failed_at IS NULL AND +locked_at IS NULL "
            "AND (run_at IS NULL OR run_at <= ?) ORDER BY priority, run_at, id LIMIT 1",
            (now,),
        ).fetchone()
        if row is None:
            conn.execute("COMMIT")
            return done
        conn.execute("UPDATE delayed_jobs SET locked_at = ?, locked_by = ? WHERE id = ?", (now, OWNER, row[0]))
        conn.execute("COMMIT")
        call(row[1])
        conn.execute("DELETE FROM delayed_jobs WHERE id = ?", (row[0],))
        done += 1


def postgres_loop(url: str) -> int:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    conn = psycopg.connect(conninfo, autocommit=True)
    claim = (
        "UPDATE delayed_jobs SET locked_at = now() AT TIME ZONE 'UTC', locked_by = %s WHERE id = ("
        "SELECT id FROM delayed_jobs WHERE failed_at IS NULL AND locked_at IS NULL "
        "AND (run_at IS NULL OR run_at <= now() AT TIME ZONE 'UTC') ORDER BY priority, run_at, id "
        "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, handler"
    )
    done = 0
    while True:
        row = conn.execute(claim, (OWNER,), prepare=True).fetchone()
        if row is None:
            return done
        call(row[1])
        conn.execute("DELETE FROM delayed_jobs WHERE id = %s", (row[0],), prepare=True)
        done += 1


def postgres_tx_loop(url: str) -> int:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    conn = psycopg.connect(conninfo)
    claim = (
        "SELECT id, handler FROM delayed_jobs WHERE failed_at IS NULL AND substr(handler, 1, 1) = '{' "
        "AND locked_at IS NULL AND (run_at IS NULL OR run_at <= now() AT TIME ZONE 'UTC') "
        "ORDER BY priority, run_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    done = 0
    while True:
        row = conn.execute(claim, prepare=True).fetchone()
        if row is None:
            conn.rollback()
            return done
        call(row[1])
        conn.execute("DELETE FROM delayed_jobs WHERE id = %s", (row[0],), prepare=True)
        conn.commit()
        done += 1


def redis_loop(url: str, queue: str = "resque:queue:default") -> int:
    import redis

    r = redis.Redis.from_url(url)
    processing = f"bench:processing:{OWNER}"
    done = 0
    while True:
        raw = r.lmove(queue, processing, "LEFT", "RIGHT")
        if raw is None:
            return done
        call(raw)
        r.lrem(processing, 1, raw)
        done += 1


def main(argv: list[str]) -> int:
    kind, url = argv[1], argv[2]
    loop = {"sqlite": sqlite_loop, "postgresql": postgres_loop, "postgresql-tx": postgres_tx_loop, "redis": redis_loop}[
        kind
    ]
    loop(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
