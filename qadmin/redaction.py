"""Sensitive job data hidden before any face shows it (`[redact]` in `qadmin.toml`).

The rule, the same on every face, in the API and in the audit log's listing:

- **keys**: a dict member whose key names a secret has its value replaced by `MARKER`, whatever
  the value is. Keys are compared case-insensitively with everything but letters and digits
  dropped, and a configured key matches anywhere inside one: `password` hides `db_password`,
  `Password` and `PASSWORD-2`; `apikey` hides `api_key`, `X-Api-Key` and `stripe_api_key`.
- **patterns**: regular expressions searched in every string (positional arguments, nested values,
  error texts, audit selections); a match is replaced by `MARKER`, or only its `secret` group when
  the pattern has one (`pin=(?P<secret>\\d+)` keeps `pin=`). Long integers are checked as their digits.
- A string holding a JSON object or array (an audit entry's `args`, an argument that is JSON text)
  is read, redacted by the same rule and written back when something was hidden.
- **defaults** (`defaults = false` turns them off): `DEFAULT_KEYS`, and card numbers (13 to 19
  digits, spaces or dashes between, that pass the Luhn check), IBANs (that pass the mod-97 check),
  the credentials of an `Authorization: Bearer …`/`Basic …` value and the password of a
  `scheme://user:password@host` URL.

What a positional value without a key holds cannot be told by its place: only patterns hide it.

The raw payload: JSON is read, redacted and written again; a Ruby YAML or PHP payload (or one that
cannot be decoded) is hidden whole (`HIDDEN_RAW`) when anything in it was hidden or its text names
a sensitive key, and has only the patterns applied otherwise. `last_error` has the patterns applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qadmin.errors import ConfigError
from qadmin.job import AuditEntry, Job

#: what replaces a hidden value
MARKER = "[redacted]"
#: what replaces a raw payload that cannot be redacted in place (Ruby YAML, PHP, undecodable)
HIDDEN_RAW = "[redacted: this raw payload holds hidden values; an admin can reveal it]"

#: the keys hidden by default, already normalised (`normal_key`)
DEFAULT_KEYS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "credential",
    "cookie",
    "cardnumber",
    "ccnumber",
    "cvv",
    "cvc",
    "iban",
)

#: a JSON string longer than this is only searched with the patterns, not parsed
JSON_TEXT_LIMIT = 64 * 1024
#: structures nested deeper than this are hidden whole rather than walked
DEPTH_LIMIT = 64

_CARD = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_AUTHORIZATION = re.compile(r"(?i)\b(?:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
_URL_PASSWORD = re.compile(r"(?<=://)[^/\s:@]+:(?P<secret>[^/\s@]+)@")


def normal_key(key: object) -> str:
    """A key as keys are compared: lower case, letters and digits only."""
    return "".join(ch for ch in str(key).lower() if ch.isalnum())


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = int(ch)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    rotated = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1
    except ValueError:
        return False


@dataclass(frozen=True)
class Rule:
    """One pattern, and what a match must also pass to be hidden (a checksum), if anything."""

    pattern: re.Pattern[str]
    digits_check: bool = False
    iban_check: bool = False

    def hide(self, match: re.Match[str]) -> str:
        text = match.group(0)
        if self.digits_check and not luhn_valid("".join(ch for ch in text if ch.isdigit())):
            return text
        if self.iban_check and not iban_valid(text):
            return text
        if "secret" in self.pattern.groupindex and match.group("secret") is not None:
            start, end = match.span("secret")
            base = match.start(0)
            return text[: start - base] + MARKER + text[end - base :]
        return MARKER


DEFAULT_RULES = (
    Rule(_CARD, digits_check=True),
    Rule(_IBAN, iban_check=True),
    Rule(_AUTHORIZATION),
    Rule(_URL_PASSWORD),
)


@dataclass(frozen=True)
class Redactor:
    """Hides sensitive values in jobs, texts and audit entries. Every method returns its argument
    itself when nothing in it was hidden, so `redacted is not original` tells whether anything was."""

    keys: tuple[str, ...] = DEFAULT_KEYS
    rules: tuple[Rule, ...] = DEFAULT_RULES
    _key_cache: dict[str, bool] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def active(self) -> bool:
        return bool(self.keys or self.rules)

    def hides_key(self, key: object) -> bool:
        text = str(key)
        known = self._key_cache.get(text)
        if known is None:
            normal = normal_key(text)
            known = bool(normal) and any(k in normal for k in self.keys)
            if len(self._key_cache) < 10_000:
                self._key_cache[text] = known
        return known

    def text(self, text: str) -> str:
        """`text` with every pattern's matches hidden."""
        out = text
        for rule in self.rules:
            out = rule.pattern.sub(rule.hide, out)
        return text if out == text else out

    def value(self, value: Any, depth: int = 0) -> Any:
        """A JSON-like value with hidden keys' values and pattern matches replaced (see the module)."""
        if depth > DEPTH_LIMIT:
            return MARKER
        if isinstance(value, str):
            return self._string(value, depth)
        if isinstance(value, Mapping):
            changed = False
            out: dict[Any, Any] = {}
            for key, item in value.items():
                hidden = MARKER if item is not None and self.hides_key(key) else self.value(item, depth + 1)
                changed = changed or hidden is not item
                out[key] = hidden
            return out if changed else value
        if isinstance(value, (list, tuple)):
            items = [self.value(item, depth + 1) for item in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
            return MARKER if self.text(str(value)) != str(value) else value
        return value

    def _string(self, text: str, depth: int) -> str:
        head = text.lstrip()[:1]
        if head in ("{", "[") and len(text) <= JSON_TEXT_LIMIT and self.keys:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, (dict, list)):
                hidden = self.value(parsed, depth + 1)
                return text if hidden is parsed else json.dumps(hidden, ensure_ascii=False)
        return self.text(text)

    def mentions_key(self, text: str) -> bool:
        """Whether `text` names a sensitive key anywhere (what hides an opaque raw payload)."""
        normal = normal_key(text)
        return any(k in normal for k in self.keys)

    def job(self, job: Job) -> Job:
        """`job` as the faces show it (the same object when nothing in it is hidden)."""
        if not self.active:
            return job
        args = self.value(job.args)
        kwargs = self.value(job.kwargs)
        display = self.value(job.display)
        meta = self.value(job.meta)
        last_error = None if job.last_error is None else self.text(job.last_error)
        result = None if job.result is None else self._string(job.result, 0)
        hid = any(
            a is not b for a, b in ((args, job.args), (kwargs, job.kwargs), (display, job.display), (meta, job.meta))
        )
        raw = self._raw(job, hid)
        if not hid and raw is job.raw and last_error is job.last_error and result is job.result:
            return job
        return replace(
            job, args=args, kwargs=kwargs, display=display, meta=meta, last_error=last_error, result=result, raw=raw
        )

    def _raw(self, job: Job, decoded_hid: bool) -> str:
        raw = job.raw
        if not raw:
            return raw
        if raw.lstrip()[:1] in ("{", "["):
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, (dict, list)):
                hidden = self.value(parsed)
                return raw if hidden is parsed else json.dumps(hidden, ensure_ascii=False)
        if decoded_hid or self.mentions_key(raw):
            return HIDDEN_RAW
        return self.text(raw)

    def keep_hidden(self, original: Any, edited: Any, label: str) -> Any:
        """`edited` (what an operator typed over the redacted view of `original`) with what the view
        hid put back: a part left as the view showed it keeps its real value, and a `MARKER` stands
        for the value at the same key or index. An edit thus never writes the marker into a job.
        ValueError for a marker with nothing under it, or a hidden text changed around its marker."""
        if (edited == MARKER and original is not None) or self.value(original) == edited:
            return original
        if isinstance(edited, dict):
            source = original if isinstance(original, dict) else {}
            return {k: self.keep_hidden(source.get(k), v, f"{label}.{k}") for k, v in edited.items()}
        if isinstance(edited, list):
            items = original if isinstance(original, list) else []
            return [
                self.keep_hidden(items[i] if i < len(items) else None, v, f"{label}[{i}]") for i, v in enumerate(edited)
            ]
        if isinstance(edited, str) and MARKER in edited:
            raise ValueError(
                f"{label} holds {MARKER!r} where the job has no hidden value to keep: "
                "reveal the job and type the whole value"
            )
        return edited

    def jobs(self, jobs: Iterable[Job]) -> list[Job]:
        return [self.job(j) for j in jobs]

    def audit_entry(self, entry: AuditEntry) -> AuditEntry:
        selection = self.value(entry.selection)
        return entry if selection is entry.selection else replace(entry, selection=selection)

    def audit(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        return [self.audit_entry(e) for e in entries]


#: no redaction at all (`[redact] defaults = false` and nothing configured)
NOTHING_HIDDEN = Redactor(keys=(), rules=())


def read_redaction(table: Any, path: Path | None = None) -> Redactor:
    """`[redact]` checked: `keys` (a list of names), `patterns` (a list of regular expressions),
    `defaults` (true unless false). A ConfigError names the file and what is wrong."""
    where = f"{path}: [redact]" if path else "[redact]"
    if table is None:
        return Redactor()
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - {"keys", "patterns", "defaults"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known: keys, patterns, defaults")
    defaults = table.get("defaults", True)
    if not isinstance(defaults, bool):
        raise ConfigError(f"{where} defaults must be true or false")
    keys = _strings(table.get("keys", []), f"{where} keys", "key names")
    normal = [normal_key(k) for k in keys]
    if not all(normal):
        raise ConfigError(f"{where} keys: a key needs a letter or a digit")
    rules = []
    for number, text in enumerate(_strings(table.get("patterns", []), f"{where} patterns", "regular expressions"), 1):
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise ConfigError(
                f"{where} patterns: pattern {number} ({text!r}) is not a valid regular expression: {exc}"
            ) from None
        if pattern.match("") is not None:
            raise ConfigError(
                f"{where} patterns: pattern {number} ({text!r}) matches the empty text, so it would hide nothing"
            )
        rules.append(Rule(pattern))
    base_keys = DEFAULT_KEYS if defaults else ()
    base_rules = DEFAULT_RULES if defaults else ()
    return Redactor(keys=tuple(dict.fromkeys([*base_keys, *normal])), rules=(*base_rules, *rules))


def _strings(value: Any, label: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{label} must be a list of {what} (non-empty strings)")
    return list(value)
