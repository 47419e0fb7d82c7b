"""What pages and the API share about actions: the read-only guard, turning request parameters
into a `JobFilter`, and the checks a bulk preview needs before it is frozen."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import abort, current_app
from werkzeug.datastructures import MultiDict

from qadmin.errors import InvalidTransition, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId
from qadmin.model import SORTS, Stats
from qadmin.ops import VERBS, BulkResult, Ops, Preview
from qadmin.ops.attempts import attempts_document
from qadmin.text import holds_lone_surrogate, plural

#: request parameters that make up a filter (JobFilter.from_params' names)
FILTER_KEYS = (
    "state",
    "queue",
    "class",
    "args",
    "search",
    "id",
    "worker",
    "stale",
    "error",
    "undecodable",
    "fingerprint",
)
#: the largest page a listing serves
MAX_LIMIT = 500

F = TypeVar("F", bound=Callable[..., Any])


def mutating(view: F) -> F:
    """Mark a view that changes data: refused with 403 when the dashboard is read-only.

    Authentication, the role (qadmin.web.access) and CSRF are checked before any view runs
    (create_app's `_guard`); this is the one other gate an action passes."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_app.config["QADMIN_READ_ONLY"]:
            abort(403, description="This dashboard is read-only: actions are disabled.")
        try:
            return view(*args, **kwargs)
        finally:
            # the page the operator is sent back to must show what the action did, not the
            # dashboard's shared reading from before it (even a failed action may have changed some)
            current_app.extensions["qadmin"].changed()

    wrapper.qadmin_mutating = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def filter_params(source: Mapping[str, Any]) -> dict[str, Any]:
    """The filter fields of a query string, a form or a JSON body, as `from_params` takes them.
    A JSON value of a type the field cannot have is an error, never its text read as a filter."""
    out: dict[str, Any] = {}
    for key in FILTER_KEYS:
        if isinstance(source, MultiDict):
            values = [v for v in source.getlist(key) if v != ""]
            if not values:
                continue
            value: Any = values if len(values) > 1 else values[0]
        else:
            if source.get(key) in (None, ""):
                continue
            value = source[key]
            _check_type(key, value)
        if key == "args" and not isinstance(value, str):
            # a JSON body may give the arguments as a real array
            value = json.dumps(value)
        if key in ("stale", "undecodable"):
            value = "1" if flag(value, key) else ""
        out[key] = value
    return out


#: the filter fields that may be given several times (a JSON array)
_MANY = ("state", "queue", "id")


def _check_type(key: str, value: Any) -> None:
    if key == "args" and isinstance(value, (str, list)):
        return
    if key in ("stale", "undecodable"):
        return  # flag() says what it takes
    items = value if key in _MANY and isinstance(value, list) else [value]
    ok = (str, int) if key == "id" else (str,)
    if not all(isinstance(v, ok) and not isinstance(v, bool) for v in items):
        kind = "text or a list of text" if key in _MANY else "text"
        raise UsageError(f"{key} must be {kind}, not {json.dumps(value)[:60]}")


#: the words a yes/no field takes (a form sends text; JSON may send true and false)
YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off", "")


def flag(value: Any, what: str) -> bool:
    """A yes/no field; anything else is an error, never quietly "no"."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, list):  # a field given twice: the last one counts, as for other fields
        value = value[-1] if value else ""
    if not isinstance(value, str):  # a JSON number is no yes or no, whatever its digits (the API says so)
        raise UsageError(f"{what} must be true or false, not {str(value)[:40]!r}")
    word = value.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise UsageError(f"{what} must be true or false, not {str(value)[:40]!r}")


def check_text(value: Any, what: str) -> None:
    """UsageError when a string in `value` is no Unicode text a backend can store: a lone
    surrogate, which a JSON body or a JSON filter may spell as `"\\ud800"`."""
    if holds_lone_surrogate(value):
        raise UsageError(f"{what}: not valid Unicode text (a lone surrogate)")


def parse_filter(ops: Ops, source: Mapping[str, Any]) -> JobFilter:
    selection = JobFilter.from_params(filter_params(source))
    check_text(list(vars(selection).values()), "filter")
    if selection.ids:
        ids = tuple(ops.backend.parse_id(str(i)) for i in selection.ids)
        selection = JobFilter(**{**selection.__dict__, "ids": ids})
    return selection


def parse_limit(text: str | None, default: int = 50) -> int:
    if text in (None, ""):
        return default
    try:
        value = int(str(text))
    except ValueError:
        raise UsageError(f"limit must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    return value


def parse_sort(text: str | None) -> str:
    if text in (None, ""):
        return "id"
    if text not in SORTS:
        raise UsageError(f"unknown sort {text!r}; expected one of: {', '.join(SORTS)}")
    return str(text)


def check_bulk(verb: str, selection: JobFilter) -> None:
    """The rules the CLI applies before a bulk verb, so both faces refuse the same things."""
    if verb not in VERBS:
        raise UsageError(f"unknown action {verb!r}; expected one of: {', '.join(VERBS)}")
    if selection.is_empty:
        raise UsageError(f"say which jobs to {verb}: select jobs or narrow the filter")
    if verb == "dequeue" and not selection.ids and (len(selection.queues) != 1 or not selection.class_name):
        raise UsageError("dequeue needs one queue and a class (and optionally exact args)")


def preview(ops: Ops, verb: str, selection: JobFilter) -> Preview:
    check_bulk(verb, selection)
    return ops.redaction.sampled(ops.preview(verb, selection))  # the sample is shown; the ids are acted on


def act_on_one(ops: Ops, verb: str, job_id: JobId | str, force: bool = False) -> BulkResult | Job:
    """One job, one verb: 404 if it does not exist, 409 if its state does not allow the verb, or
    if it is an unlock of a job a live worker holds and `force` is not given."""
    if verb == "retry":
        return ops.retry_job(job_id)
    if verb not in ("delete", "unlock", "run_now", "kill", "cancel"):
        raise UsageError(f"unknown action {verb!r} for one job")
    job = ops.show(job_id)
    if job.state not in VERBS[verb]:
        raise InvalidTransition(job.id, job.state.value, verb)
    if verb == "kill" and job.attempts < 1:
        raise InvalidTransition(job.id, "scheduled and never ran (kill acts on jobs waiting for a retry)", verb)
    frozen = ops.preview(verb, JobFilter(ids=(job.id,)))
    if verb == "cancel" and not frozen.count:  # running in a worker qadmin cannot tell to stop
        raise InvalidTransition(job.id, "running in a delayed_job, DJJob or Resque worker, which cannot be told", verb)
    if verb == "unlock" and not force:
        ops.refuse_live_holders(frozen)
    result = ops.apply(frozen)
    if not result.changed:
        raise InvalidTransition(job.id, "changed meanwhile", verb)
    return result


def past(verb: str) -> str:
    return {
        "retry": "retried",
        "delete": "deleted",
        "dequeue": "dequeued",
        "unlock": "unlocked",
        "run_now": "run now",
        "kill": "killed",
        "cancel": "cancelled",
        "pause": "paused",
        "resume": "resumed",
    }.get(verb, verb)


def summary(result: BulkResult) -> str:
    if result.matched == 0:
        return f"No jobs matched: nothing to {result.verb}."
    text = f"{past(result.verb).capitalize()} {result.changed} of {plural(result.matched, 'job')}."
    if result.skipped:
        text += f" {len(result.skipped)} skipped: changed state since the preview, or never allowed it."
    return text


def stats_dict(st: Stats) -> dict[str, Any]:
    """`qadmin stats --json`, key for key."""
    return {
        "queues": st.queues,
        "totals": st.totals(),
        "processed": st.processed,
        "failed": st.failed,
        "oldest_pending_at": st.oldest_pending_at.isoformat() if st.oldest_pending_at else None,
        "paused": st.paused,
        "workers": st.workers,
        "rescued": st.rescued,
        "throughput": [{"minute": m.isoformat(), "processed": p, "failed": f} for m, p, f in st.throughput],
        **({"unreadable": st.unreadable} if st.unreadable else {}),
    }


#: characters of any one string a listing returns: beyond, it is cut, and the job's `truncated`
#: says which fields were and their full size (its own endpoint, /api/jobs/<id>, gives them whole)
LISTED_CHARS = 4096


def listed_dict(job: Job) -> dict[str, Any]:
    """`job.to_dict()` for a listing: no field bigger than a screen, so that a page of jobs with
    10 MB arguments stays a page. Cut fields keep their type (arguments stay an array)."""
    out = job.to_dict()
    truncated: dict[str, int] = {}
    for key, value in out.items():
        cut = _cut_strings(value)
        if cut is not value:
            out[key] = cut
            truncated[key] = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    if truncated:
        out["truncated"] = truncated
    return out


def listed_sample(out: dict[str, Any], sample: list[Job]) -> dict[str, Any]:
    """A preview's or a dry run's JSON (`out`) with its sample of jobs cut as a listing's are."""
    if "sample" in out:
        out["sample"] = [listed_dict(j) for j in sample]
    return out


def _cut_strings(value: Any) -> Any:
    """`value` itself when no string in it is longer than LISTED_CHARS, else a copy with each
    such string cut (and ending in "…")."""
    if isinstance(value, str):
        return value if len(value) <= LISTED_CHARS else value[: LISTED_CHARS - 1] + "…"
    if isinstance(value, list):
        items = [_cut_strings(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, dict):
        pairs = {k: _cut_strings(v) for k, v in value.items()}
        return value if all(pairs[k] is v for k, v in value.items()) else pairs
    return value


def show_dict(ops: Ops, job: Job, *, reveal: bool = False) -> dict[str, Any]:
    """`qadmin show --json`, key for key: redacted, or in full for an admin's reveal (audited)."""
    history = ops.audit(limit=50, job_id=job.id)
    job = ops.noted(job, history)  # a cancel that did not stop it: "… — it finished first"
    job, history, attempts = ops.redaction.view(job, history, ops.attempts(job.id), reveal=reveal)
    out = job.to_dict()
    out["raw"] = job.raw
    if job.display is not None:
        out["decoded"] = job.display
    if job.meta:
        out["meta"] = job.meta
    out["audit"] = [a.to_dict() for a in history]
    out["runs"] = attempts_document(attempts)
    return out


def oldest_age(st: Stats, now: datetime | None = None) -> float | None:
    if st.oldest_pending_at is None:
        return None
    now = now or datetime.now(UTC)
    return max((now - st.oldest_pending_at).total_seconds(), 0.0)
