"""Table definitions: the jobs table in delayed_job's layout, and qadmin's own bookkeeping.

qadmin never adds columns to the jobs table; everything of its own lives in `qadmin_*` tables
beside it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.times import UtcDateTime

#: name of the jobs table qadmin creates
DEFAULT_TABLE = "delayed_jobs"


def json_handler(handler: Any) -> Any:
    """A qadmin/Resque JSON payload (Ruby YAML and PHP rows belong to their own workers), spelt
    with literals, never bound values: the claim index's condition and the claim's must match."""
    one: sa.ColumnClause[int] = sa.literal_column("1")
    return sa.func.substr(handler, one, one) == sa.literal_column("'{'")


def claim_index_name(name: str) -> str:
    return f"qadmin_{name}_claim"


def holds_unlocked_only(where: Any) -> bool:
    """Whether a claim index with this condition (PostgreSQL's `postgresql_where`, as built or as
    reflected) holds unlocked rows only, as qadmin's has since it left out locked rows
    (`delayed_jobs_table`); an earlier qadmin's held them."""
    return where is not None and "locked_at IS NULL" in str(where)


def state_index_name(name: str) -> str:
    return f"qadmin_{name}_state"


def _not_postgresql(
    ddl: Any,
    target: Any,
    bind: sa.Connection | None,
    tables: list[sa.Table] | None = None,
    state: Any = None,
    *,
    dialect: sa.Dialect,
    compiler: Any = None,
    checkfirst: bool = False,  # in the stubs' signature, though SQLAlchemy calls without it
    **kw: Any,
) -> bool:
    return dialect.name != "postgresql"


def delayed_jobs_table(metadata: sa.MetaData, name: str = DEFAULT_TABLE) -> sa.Table:
    """delayed_job_active_record's generator migration, column for column."""
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("handler", sa.Text, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("run_at", UtcDateTime),
        sa.Column("locked_at", UtcDateTime),
        sa.Column("failed_at", UtcDateTime),
        sa.Column("locked_by", sa.String(255)),
        sa.Column("queue", sa.String(255)),
        sa.Column("created_at", UtcDateTime(timezone=False)),
        sa.Column("updated_at", UtcDateTime(timezone=False)),
        sa.Index(f"{name}_priority" if name != DEFAULT_TABLE else "delayed_jobs_priority", "priority", "run_at"),
        # as Rails creates it on SQLite: ids are never reused, so a finished job's id (kept in
        # qadmin_finished and the audit log) never comes to name a new job
        sqlite_autoincrement=True,
    )
    # the claim walks live rows in claim order and stops at the first runnable one: a partial
    # index holds exactly those rows in exactly that order (PostgreSQL sorts NULL run_at first
    # only when told, as the claim's ORDER BY does), so a claim costs the same on any queue size.
    # Its condition names the JSON handlers as well: only the claim states that, so the admin
    # queries (`failed_at IS NULL` alone) are never planned onto it
    live = sa.and_(table.c.failed_at.is_(None), json_handler(table.c.handler))
    sa.Index(claim_index_name(name), table.c.priority, table.c.run_at, table.c.id, sqlite_where=live).ddl_if(
        dialect="sqlite"
    )
    # PostgreSQL's holds the unlocked rows only. A claim's lock is an UPDATE of indexed columns (not
    # HOT): on an index that kept locked rows it entered every claimed row a second time, beside its
    # first entry, on the very leaf page the claim had just read. A scan marks the entries of rows
    # dead to everyone as such (kill_prior_tuple) only if their page is unchanged when it leaves
    # it, so none ever was: each claim walked past and fetched every row claimed since the last
    # vacuum (86 entries per claim over a 5,000-job drain). The lock now takes a row out of this
    # index, the page the claim read stays as it was, and the next claim marks the row's entry
    # (2 entries per claim). Locked rows a claim may take (expired, or its own) are read off the
    # locked_at index, which holds only locked rows (`ClaimStatements._pick`).
    sa.Index(
        claim_index_name(name),
        table.c.priority,
        table.c.run_at.asc().nulls_first(),
        table.c.id,
        postgresql_where=sa.and_(live, table.c.locked_at.is_(None)),
    ).ddl_if(dialect="postgresql")
    # stats() and the state counts read queue and state of every row: from this index alone,
    # never the rows with their fat handlers
    sa.Index(
        state_index_name(name), table.c.queue, table.c.failed_at, table.c.locked_at, table.c.run_at, table.c.locked_by
    )
    # Every index is one more B-tree for each enqueued row to enter. The locked listings and the
    # lock holders want the few locked rows: a partial index holds only those, so an enqueue
    # costs it nothing (their queries say `locked_at IS NOT NULL`, or a comparison implying it,
    # which both planners match to the index's condition). Tables created by an earlier qadmin
    # keep the full indexes of the same names, which serve the same queries.
    sa.Index(
        f"qadmin_{name}_locked_at",
        table.c.locked_at,
        sqlite_where=table.c.locked_at.is_not(None),
        postgresql_where=table.c.locked_at.is_not(None),
    )
    # The failed listings likewise, on PostgreSQL. SQLite keeps the full index: walked backwards,
    # it is the order of a listing of every state sorted by `-failed_at` (NULLs last), which
    # PostgreSQL sorts anyway (the NULL rows are not in its index).
    sa.Index(f"qadmin_{name}_failed_at", table.c.failed_at).ddl_if(callable_=_not_postgresql)
    # Walked backwards, PostgreSQL's is the order of the failed listing, `failed_at DESC NULLS
    # LAST, id DESC`, so a page is its first entries. On failed_at alone it was not: its planner
    # matches an index to an ORDER BY by NULLS placement even where no row is NULL, and wants the
    # id tiebreak that SQLite's entries carry anyway (they end with the rowid); every failed row
    # was read and sorted for each page.
    sa.Index(
        f"qadmin_{name}_failed_at",
        table.c.failed_at.asc().nulls_first(),
        table.c.id,
        postgresql_where=table.c.failed_at.is_not(None),
    ).ddl_if(dialect="postgresql")
    # `queue = ?` in id order: SQLite reads it off this index ((queue, rowid)), while the state
    # index would make it sort a queue's rows, or scan the table for a rare queue. PostgreSQL
    # sorts either way, and finds a queue's rows through the state index as well as through this
    sa.Index(f"qadmin_{name}_queue", table.c.queue).ddl_if(callable_=_not_postgresql)
    return table


def is_djjob(table: sa.Table) -> bool:
    """DJJob's layout (docs/compatibility.md §5.1): its error column is `error`, and it has no priority."""
    return "error" in table.c and "last_error" not in table.c


def reflect_jobs_table(metadata: sa.MetaData, name: str, conn: sa.Connection) -> sa.Table:
    """A jobs table written by someone else (delayed_job, DJJob), with UTC-aware datetimes,
    written at the precision of the table's own library."""
    table = sa.Table(name, metadata, autoload_with=conn)
    whole_seconds = is_djjob(table)
    for column in table.columns:
        if isinstance(column.type, (sa.DateTime, sa.TIMESTAMP)) or column.name in (
            "run_at",
            "locked_at",
            "failed_at",
            "created_at",
            "updated_at",
        ):
            column.type = UtcDateTime(whole_seconds=whole_seconds)
    return table


def bookkeeping_tables(metadata: sa.MetaData, prefix: str = "qadmin_") -> dict[str, sa.Table]:
    t: dict[str, sa.Table] = {}
    t["finished"] = sa.Table(
        f"{prefix}finished",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("queue", sa.String(255)),
        sa.Column("class_name", sa.String(255)),
        sa.Column("handler", sa.Text),
        sa.Column("priority", sa.Integer),
        sa.Column("attempts", sa.Integer),
        sa.Column("created_at", UtcDateTime),
        sa.Column("finished_at", UtcDateTime, nullable=False),
        sa.Column("runtime", sa.Float),
        sa.Column("worker", sa.String(255)),
        # who cancelled the job (`qadmin cancel`); NULL for a job that ran to completion. Added
        # to the tables of an earlier qadmin by `Store` (FINISHED_ADDED_COLUMNS)
        sa.Column("cancelled_by", sa.String(255)),
        sa.Index(f"{prefix}finished_at", "finished_at"),
        sa.Index(f"{prefix}finished_job", "job_table", "job_id"),
    )
    # a cancel asked of the worker that holds a running job: it interrupts the job when its
    # heartbeat sees this row, and deletes it with the outcome
    t["cancels"] = sa.Table(
        f"{prefix}cancels",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
    )
    # a job waiting for an external service (`qadmin.Waiting`): its row moved here out of the jobs
    # table, where no worker of any kind claims it, until reported back or past its deadline
    t["waiting"] = sa.Table(
        f"{prefix}waiting",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("job_id", sa.BigInteger, primary_key=True),
        sa.Column("since", UtcDateTime, nullable=False),
        sa.Column("deadline", UtcDateTime, nullable=False),
        sa.Column("worker", sa.String(255)),
        sa.Column("row", sa.Text, nullable=False),
        sa.Index(f"{prefix}waiting_deadline", "deadline"),
    )
    t["throughput"] = sa.Table(
        f"{prefix}throughput",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("minute", UtcDateTime, primary_key=True),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    )
    t["counters"] = sa.Table(
        f"{prefix}counters",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
    )
    t["pauses"] = sa.Table(
        f"{prefix}pauses",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("queue", sa.String(255), primary_key=True),
        sa.Column("paused_at", UtcDateTime, nullable=False),
    )
    t["workers"] = sa.Table(
        f"{prefix}workers",
        metadata,
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("queues", sa.Text, nullable=False),
        sa.Column("started_at", UtcDateTime),
        sa.Column("heartbeat_at", UtcDateTime),
        sa.Column("current_job", sa.String(64)),
        sa.Column("job_started_at", UtcDateTime),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    )
    t["audit"] = sa.Table(
        f"{prefix}audit",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("face", sa.String(32), nullable=False),
        sa.Column("verb", sa.String(32), nullable=False),
        sa.Column("selection", sa.Text, nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    t["audit_jobs"] = sa.Table(
        f"{prefix}audit_jobs",
        metadata,
        sa.Column("audit_id", sa.Integer, nullable=False),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Index(f"{prefix}audit_jobs_job", "job_table", "job_id"),
    )
    t["unique"] = sa.Table(
        f"{prefix}unique",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("job_id", sa.BigInteger, nullable=False),
    )
    # what finished jobs returned: a table of its own rather than a column of qadmin_finished, so
    # that a database an earlier qadmin made gets it by the same create-if-missing as the rest
    t["results"] = sa.Table(
        f"{prefix}results",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Index(f"{prefix}results_job", "job_table", "job_id"),
        sa.Index(f"{prefix}results_at", "finished_at"),
    )
    # recurring schedules (`qadmin.recurring`) and the last tick each fired: the compare-and-set
    # on last_tick, in the transaction that inserts the tick's job, keeps a tick to one job
    t["recurring"] = sa.Table(
        f"{prefix}recurring",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        # the Schedule's other fields as JSON (`backends/sql/recurring.py`)
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("last_tick", UtcDateTime),
        sa.Column("last_run_at", UtcDateTime),
        sa.Column("last_job_id", sa.String(64)),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    # alert incidents (`qadmin.alert_rules`): one row per rule, opened and resolved by
    # compare-and-set, each message's delivery claimed for a lease and recorded once sent
    t["alerts"] = sa.Table(
        f"{prefix}alerts",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("rule", sa.String(255), primary_key=True),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("firing_sent_at", UtcDateTime),
        sa.Column("resolved_sent_at", UtcDateTime),
        sa.Column("sending_until", UtcDateTime),
    )
    # the runs of a job that did not succeed (`backends/history.py`): a successful or cancelled
    # run is its finished record, which already says when, how long and where
    t["attempts"] = sa.Table(
        f"{prefix}attempts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_table", sa.String(255), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("started_at", UtcDateTime),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("worker", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Index(f"{prefix}attempts_job", "job_table", "job_id", "number"),
    )
    # history (`qadmin.insight`, `sql/history.py`): per bucket (a minute or an hour), queue and
    # class, the counts added by every worker's flush (upserts), and the runtime histogram's
    # non-empty buckets in a child table of the same key, so that both add up across workers
    t["history"] = sa.Table(
        f"{prefix}history",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("resolution", sa.String(8), primary_key=True),
        sa.Column("at", UtcDateTime, primary_key=True),
        sa.Column("queue", sa.String(255), primary_key=True),
        sa.Column("class_name", sa.String(255), primary_key=True),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retried", sa.Integer, nullable=False, server_default="0"),
        sa.Column("runtime_total", sa.Float, nullable=False, server_default="0"),
        sa.Column("latency", sa.Float),
    )
    t["history_runtimes"] = sa.Table(
        f"{prefix}history_runtimes",
        metadata,
        sa.Column("job_table", sa.String(255), primary_key=True),
        sa.Column("resolution", sa.String(8), primary_key=True),
        sa.Column("at", UtcDateTime, primary_key=True),
        sa.Column("queue", sa.String(255), primary_key=True),
        sa.Column("class_name", sa.String(255), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
    )
    return t


#: columns of qadmin_finished added after its first release: (name, type), added where missing
FINISHED_ADDED_COLUMNS = (("cancelled_by", sa.String(255)),)
