r"""`JobFilter`: the one way every verb selects jobs, in every face and backend.

A filter is parsed from strings (CLI options, web query strings) with `from_params` and written
back with `to_params`; `matches(job)` is the exact predicate, which backends apply after
whatever they can push down into SQL or Redis.

The class filter (`class_matches`) takes the names the faces show: a job of class
`qadmin.examples.SendEmail` is found by

* its full name, exactly: `qadmin.examples.SendEmail`;
* a prefix of the full name, in any ASCII case: `qadmin.ex`, `QADMIN.EXAMPLES.SENDEMAIL`;
* a prefix of its last component, in any ASCII case: `SendEmail`, `sendemail`, `sendem`. The
  last component is what follows the last `.`, `:` (Ruby's `::`, Python's `module:func`) or `\`
  (PHP namespaces): `Billing::Charge` -> `Charge`, `App\Jobs\Send` -> `Send`.

An empty filter finds only jobs whose class is empty. Case is folded for ASCII letters only, as
SQLite's `lower()` does, so what SQL pushes down never drops a job the rule keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from qadmin.errors import UsageError
from qadmin.fingerprints import FINGERPRINT_ID, fingerprint
from qadmin.job import Job, JobId, JobState
from qadmin.text import holds_lone_surrogate

#: the states a filter may name, plus "stale" (a locked job whose lock is stale)
STATE_WORDS = tuple(s.value for s in JobState) + ("stale",)


def parse_states(words: Iterable[str]) -> frozenset[JobState]:
    states: set[JobState] = set()
    for word in words:
        for part in str(word).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "stale":
                states.add(JobState.LOCKED)
                continue
            try:
                states.add(JobState(part))
            except ValueError:
                raise UsageError(f"unknown state {part!r}; expected one of: {', '.join(STATE_WORDS)}") from None
    return frozenset(states)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_args_json(text: str) -> list[Any]:
    # strict JSON: NaN and infinities would never equal a job's arguments (NaN != NaN) and do
    # not survive a round trip through to_params
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split("\n", 1)[0]
        raise UsageError(f"--args is not valid JSON: {reason}") from None
    if not isinstance(value, list):
        raise UsageError("--args must be a JSON array, e.g. '[1, \"x\"]'")
    if holds_lone_surrogate(value):
        # valid JSON, but no stored job's arguments hold one, and it cannot be printed back
        raise UsageError("--args is not valid JSON text: a \\u escape names a lone surrogate")
    return value


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LAST_COMPONENT = re.compile(r"[^.:\\]*\Z")


def fold(text: str) -> str:
    """ASCII letters in lower case, everything else as it is (the class filter's case folding)."""
    return text.translate(_ASCII_LOWER)


def last_component(class_name: str) -> str:
    """`a.b.C`, `A::B::C`, `a.b:C` and `A\\B\\C` all end in `C`."""
    return _LAST_COMPONENT.search(class_name).group()  # type: ignore[union-attr]


def class_matches(wanted: str, class_name: str) -> bool:
    """Whether a class filter selects a job class (the rule is in the module docstring)."""
    if wanted == class_name:
        return True
    if not wanted:
        return False
    needle = fold(wanted)
    return fold(class_name).startswith(needle) or fold(last_component(class_name)).startswith(needle)


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a verb acts on. Empty fields select everything."""

    states: frozenset[JobState] = frozenset()
    queues: tuple[str, ...] = ()
    #: the full name, or an ASCII-case-insensitive prefix of it or of its last component
    #: (`class_matches`)
    class_name: str | None = None
    #: exact positional arguments (compared after decoding, so escapes do not matter)
    args: tuple[Any, ...] | None = None
    #: case-insensitive substring of the raw payload, the decoded class and arguments, or the
    #: last error's text
    search: str | None = None
    ids: tuple[JobId, ...] = ()
    #: only locks held by this worker name (substring)
    locked_by: str | None = None
    #: only stale locks (implies state locked)
    stale_only: bool = False
    #: the first line of `last_error` (an exact error variant)
    error: str | None = None
    #: an error group: failed jobs whose error has this fingerprint id (`qadmin.fingerprints`)
    fingerprint: str | None = None
    #: only jobs no qadmin worker can decode
    undecodable: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a queue named twice (`--queue a --queue a`) is one queue: no backend counts it twice
        if len(set(self.queues)) != len(self.queues):
            object.__setattr__(self, "queues", tuple(dict.fromkeys(self.queues)))

    def with_states(self, *states: JobState) -> JobFilter:
        return replace(self, states=frozenset(states))

    @property
    def is_empty(self) -> bool:
        return self == JobFilter()

    def matches(self, job: Job) -> bool:
        if self.states and job.state not in self.states:
            return False
        if self.stale_only and not (job.state is JobState.LOCKED and job.stale):
            return False
        if self.queues and (job.queue or "") not in self.queues:
            return False
        if self.class_name is not None and not class_matches(self.class_name, job.class_name):
            return False
        if self.args is not None and list(job.args) != list(self.args):
            return False
        if self.ids and job.id not in self.ids and str(job.id) not in {str(i) for i in self.ids}:
            return False
        if self.locked_by is not None and self.locked_by not in (job.locked_by or ""):
            return False
        if self.error is not None and job.error_message != self.error:
            return False
        if self.fingerprint is not None and not in_error_group(job, self.fingerprint):
            return False
        if self.undecodable and job.decodable:
            return False
        if self.search:
            needle = self.search.lower()
            hay = job.raw.lower()
            if needle not in hay and needle not in searchable_text(job).lower():
                return False
        return True

    # --- strings in, strings out -------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> JobFilter:
        """Parse a filter from string parameters (web query args, CLI options).

        Raises UsageError with a clear message for anything it cannot parse.
        """
        for key in ("state", "queue", "class", "search", "id", "worker", "error", "fingerprint"):
            values = params.get(key)
            for value in values if isinstance(values, (list, tuple)) else [values]:
                if isinstance(value, str) and "\x00" in value:
                    # no name or text of a job holds one, and PostgreSQL refuses them in queries
                    raise UsageError(f"{key}: a NUL byte is not allowed in a filter")

        def many(key: str) -> list[str]:
            value = params.get(key)
            if value is None or value == "":
                return []
            if isinstance(value, (list, tuple)):
                out: list[str] = []
                for v in value:
                    out.extend(p for p in str(v).split(",") if p.strip())
                return [p.strip() for p in out]
            return [p.strip() for p in str(value).split(",") if p.strip()]

        def one(key: str) -> str | None:
            value = params.get(key)
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else None
            if value is None or str(value) == "":
                return None
            return str(value)

        state_words = many("state")
        states = parse_states(state_words)
        stale_only = "stale" in [w.lower() for w in state_words] or _truthy(one("stale"))
        if stale_only:  # a stale lock is a locked job: keep the filter in its one canonical form
            states = states | {JobState.LOCKED}
        args_text = one("args")
        ids: list[JobId] = []
        for raw in many("id"):
            # str.isdigit() also holds for "²" and other digits int() refuses
            ids.append(int(raw) if raw.isascii() and raw.isdigit() else raw)
        return cls(
            states=states,
            queues=tuple(many("queue")),
            class_name=one("class"),
            args=tuple(parse_args_json(args_text)) if args_text is not None else None,
            search=one("search"),
            ids=tuple(ids),
            locked_by=one("worker"),
            stale_only=stale_only,
            error=one("error"),
            fingerprint=parse_fingerprint(one("fingerprint")),
            undecodable=_truthy(one("undecodable")),
        )

    def to_params(self) -> dict[str, str]:
        """The inverse of `from_params`: only the fields that are set."""
        out: dict[str, str] = {}
        states = sorted(s.value for s in self.states)
        if self.stale_only:
            states = [s for s in states if s != "locked"] + ["stale"]
        if states:
            out["state"] = ",".join(states)
        if self.queues:
            out["queue"] = ",".join(self.queues)
        if self.class_name is not None:
            out["class"] = self.class_name
        if self.args is not None:
            out["args"] = json.dumps(list(self.args), ensure_ascii=False)
        if self.search:
            out["search"] = self.search
        if self.ids:
            out["id"] = ",".join(str(i) for i in self.ids)
        if self.locked_by is not None:
            out["worker"] = self.locked_by
        if self.error is not None:
            out["error"] = self.error
        if self.fingerprint is not None:
            out["fingerprint"] = self.fingerprint
        if self.undecodable:
            out["undecodable"] = "1"
        return out

    def describe(self) -> str:
        params = self.to_params()
        return " ".join(f"{k}={v}" for k, v in params.items()) or "all jobs"


def parse_fingerprint(text: str | None) -> str | None:
    """A fingerprint id as `qadmin errors` prints it (12 hex digits), or UsageError."""
    if text is None:
        return None
    wanted = text.strip().lower()
    if not FINGERPRINT_ID.fullmatch(wanted):
        raise UsageError(f"fingerprint must be 12 hex digits, as `qadmin errors` shows them, not {text[:40]!r}")
    return wanted


def in_error_group(job: Job, fingerprint_id: str) -> bool:
    """Whether a job is a failed one of the error group with this fingerprint id."""
    return job.state is JobState.FAILED and fingerprint(job.error_message).id == fingerprint_id


def searchable_text(job: Job) -> str:
    try:
        args = json.dumps(job.args, ensure_ascii=False, default=str)
        kwargs = json.dumps(job.kwargs, ensure_ascii=False, default=str) if job.kwargs else ""
    except (TypeError, ValueError):
        args, kwargs = str(job.args), str(job.kwargs)
    return f"{job.class_name} {args} {kwargs} {job.last_error or ''}"


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")
