"""The redaction rule (`qadmin.redaction`): keys, patterns, defaults, raw payloads, audit entries,
edits over a redacted view, and `[redact]` read from qadmin.toml."""

import json
from datetime import UTC, datetime

import pytest

from qadmin.config import load_config
from qadmin.errors import ConfigError
from qadmin.job import AuditEntry, Job
from qadmin.redaction import HIDDEN_RAW, MARKER, NOTHING_HIDDEN, Redactor, luhn_valid, read_redaction

SECRETS = {"password": "hunter2", "card": "4111 1111 1111 1111", "token": "abc"}


def test_the_defaults_hide_keys_and_card_numbers():
    r = Redactor()
    assert r.value(SECRETS) == {"password": MARKER, "card": MARKER, "token": MARKER}
    assert r.value({"db_password": 1, "X-Api-Key": "k", "Authorization": "Basic x", "name": "bob"}) == {
        "db_password": MARKER,
        "X-Api-Key": MARKER,
        "Authorization": MARKER,
        "name": "bob",
    }


def test_keys_are_found_at_any_depth_and_in_lists():
    r = Redactor()
    value = [1, {"user": {"credentials": {"x": 1}, "items": [{"secret": [1, 2]}, "plain"]}}]
    assert r.value(value) == [1, {"user": {"credentials": MARKER, "items": [{"secret": MARKER}, "plain"]}}]


def test_a_key_with_nothing_under_it_stays_none():
    assert Redactor().value({"password": None}) == {"password": None}


def test_card_numbers_need_the_luhn_check():
    r = Redactor()
    assert luhn_valid("4111111111111111")
    assert r.text("card 4111-1111-1111-1111 declined") == f"card {MARKER} declined"
    assert r.text("order 4111111111111112") == "order 4111111111111112"  # fails Luhn: an id, not a card
    assert r.value(["4111111111111111", 4111111111111111, 12]) == [MARKER, MARKER, 12]


def test_iban_bearer_and_url_passwords():
    r = Redactor()
    assert r.text("pay to GB82 WEST 1234 5698 7654 32 now") == f"pay to {MARKER} now"
    assert r.text("GB00 WEST 1234 5698 7654 32") == "GB00 WEST 1234 5698 7654 32"  # wrong checksum
    assert r.text("header Bearer eyJhbGciOi.abc") == f"header Bearer {MARKER}"
    assert r.text("cannot connect to postgres://app:s3cret@db/x") == f"cannot connect to postgres://app:{MARKER}@db/x"


def test_json_text_is_read_and_written_back():
    r = Redactor()
    hidden = r.value('[{"password": "hunter2", "n": 1}]')
    assert "hunter2" not in hidden and json.loads(hidden) == [{"password": MARKER, "n": 1}]
    assert r.value('["plain"]') == '["plain"]'


def test_nothing_hidden_returns_the_same_objects():
    r = Redactor()
    args = [1, "two", {"three": [3]}]
    assert r.value(args) is args
    job = Job(id=1, queue="q", class_name="C", args=args, raw=json.dumps({"class": "C", "args": args}))
    assert r.job(job) is job


def qadmin_job(**kw):
    payload = {"class": "Mailer", "args": [SECRETS, "4111111111111111"], "kwargs": {"api_token": "t0k"}}
    return Job(
        id=7,
        queue="q",
        class_name="Mailer",
        args=payload["args"],
        kwargs=payload["kwargs"],
        raw=json.dumps(payload),
        last_error="Declined: card 4111 1111 1111 1111",
        **kw,
    )


def test_a_job_shows_no_secret_anywhere():
    shown = Redactor().job(qadmin_job())
    text = json.dumps({**shown.to_dict(), "raw": shown.raw, "meta": shown.meta})
    for secret in ("hunter2", "4111", "abc", "t0k"):
        assert secret not in text
    assert json.loads(shown.raw)["args"][0] == {"password": MARKER, "card": MARKER, "token": MARKER}
    assert shown.last_error == f"Declined: card {MARKER}"


def test_a_yaml_raw_payload_is_hidden_whole():
    raw = "--- !ruby/object:Mailer\npassword: hunter2\n"
    job = Job(
        id=1,
        queue=None,
        class_name="Mailer",
        kwargs={"password": "hunter2"},
        display={"__ruby__": "object:Mailer", "value": {"password": "hunter2"}},
        raw=raw,
        format="delayed_job",
    )
    shown = Redactor().job(job)
    assert shown.raw == HIDDEN_RAW
    assert shown.display == {"__ruby__": "object:Mailer", "value": {"password": MARKER}}


def test_an_undecodable_payload_naming_a_key_is_hidden_and_patterns_apply_otherwise():
    r = Redactor()
    named = Job(id=1, queue=None, class_name="?", raw="!garbage api_key: zzz", undecodable="bad")
    assert r.job(named).raw == HIDDEN_RAW
    carded = Job(id=2, queue=None, class_name="?", raw="!garbage 4111111111111111", undecodable="bad")
    assert r.job(carded).raw == f"!garbage {MARKER}"


def test_kept_results_are_redacted():
    job = Job(id=1, queue="q", class_name="C", result='{"result": {"token": "xyz"}}')
    assert Redactor().job(job).kept_result == {"result": {"token": MARKER}}


def test_audit_selections_are_redacted():
    entry = AuditEntry(
        id=1,
        at=datetime.now(UTC),
        actor="a",
        face="cli",
        verb="dequeue",
        selection={"args": json.dumps([{"password": "hunter2"}]), "class": "C"},
        matched=1,
        changed=1,
        skipped=0,
    )
    shown = Redactor().audit_entry(entry)
    assert "hunter2" not in json.dumps(shown.to_dict())
    assert shown.selection["class"] == "C"


def test_an_edit_over_the_view_keeps_the_hidden_values():
    r = Redactor()
    original = [{"password": "hunter2", "n": 1}, "4111111111111111"]
    view = r.value(original)
    assert r.keep_hidden(original, view, "args") == original
    edited = [{"password": MARKER, "n": 2}, MARKER, "new"]
    assert r.keep_hidden(original, edited, "args") == [{"password": "hunter2", "n": 2}, "4111111111111111", "new"]
    assert r.keep_hidden(original, [{"password": "new"}], "args") == [{"password": "new"}]
    with pytest.raises(ValueError, match="no hidden value"):
        r.keep_hidden(original, [{"other": MARKER}], "args")


def test_config_adds_keys_and_patterns():
    r = read_redaction({"keys": ["Social-Security"], "patterns": [r"pin=(?P<secret>\d+)", r"ACME-\d{4}"]})
    assert r.value({"social_security_no": "1", "password": "x"}) == {"social_security_no": MARKER, "password": MARKER}
    assert r.text("pin=1234 ACME-9876 4111111111111111") == f"pin={MARKER} {MARKER} {MARKER}"


def test_defaults_can_be_turned_off():
    r = read_redaction({"defaults": False, "keys": ["ssn_value"]})
    assert r.value({"password": "x", "ssn_value": "y"}) == {"password": "x", "ssn_value": MARKER}
    assert r.text("4111111111111111") == "4111111111111111"
    assert read_redaction({"defaults": False}).value({"password": "x"}) == {"password": "x"}
    assert not NOTHING_HIDDEN.active


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"patterns": ["(unclosed"]}, "pattern 1 .* is not a valid regular expression"),
        ({"patterns": ["a*"]}, "matches the empty text"),
        ({"patterns": "x"}, "patterns must be a list"),
        ({"keys": ["--"]}, "a key needs a letter"),
        ({"defaults": "no"}, "defaults must be true or false"),
        ({"colour": 1}, "unknown setting 'colour'"),
    ],
)
def test_bad_settings_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        read_redaction(table)


def test_qadmin_toml_redact_section(tmp_path):
    path = tmp_path / "qadmin.toml"
    path.write_text('[redact]\nkeys = ["mothers_maiden"]\npatterns = ["ZZ-\\\\d+"]\n', encoding="utf-8")
    r = load_config(str(path)).redactor
    assert r.value({"mothers_maiden_name": "x", "v": "ZZ-12"}) == {"mothers_maiden_name": MARKER, "v": MARKER}
    path.write_text('[redact]\npatterns = ["(bad"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"qadmin.toml: \[redact\] patterns: pattern 1"):
        load_config(str(path))
