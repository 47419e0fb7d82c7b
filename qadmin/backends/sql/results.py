"""What finished jobs returned (`qadmin_results`): written by a worker after a success that
returned something, read with a finished job. Jobs that return None cost nothing here."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from qadmin.backends.sql.store import Store
from qadmin.job import Job, JobId


class Results:
    def __init__(self, store: Store) -> None:
        self.store = store

    def keep(self, job: Job, now: datetime, result: str) -> None:
        """Store `result` (`qadmin.job.result_text`'s JSON) for the job just completed."""
        self.store.ensure_aux()
        r = self.store.aux["results"]
        with self.store.write() as conn:
            conn.execute(
                sa.insert(r).values(job_table=self.store.table_name, job_id=job.id, finished_at=now, result=result)
            )

    def of(self, conn: sa.Connection, job_id: JobId) -> str | None:
        """The latest result kept for a finished job, if any."""
        if not self.store.has_aux("results"):  # no qadmin since results were kept has written here
            return None
        r = self.store.aux["results"]
        value = conn.execute(
            sa.select(r.c.result)
            .where(r.c.job_table == self.store.table_name, r.c.job_id == job_id)
            .order_by(r.c.id.desc())
            .limit(1)
        ).scalar()
        return value if isinstance(value, str) else None
