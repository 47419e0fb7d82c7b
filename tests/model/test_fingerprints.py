"""The error fingerprint rules (qadmin/fingerprints.py, documented in docs/errors.md): one test
per rule, and the messages a naive rule would merge that must stay apart."""

from __future__ import annotations

import pytest

from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.fingerprints import NO_ERROR, exception_of, fingerprint, normalise


def same(*lines: str) -> bool:
    return len({fingerprint(line).id for line in lines}) == 1


def test_uuids() -> None:
    assert normalise("job 123e4567-e89b-12d3-a456-426614174000 gone") == "job <uuid> gone"
    assert normalise("ID 123E4567-E89B-12D3-A456-426614174000") == "ID <uuid>"


def test_urls_before_e_mail_addresses() -> None:
    assert normalise("GET https://api.example.com/v1/users/42?x=1 failed") == "GET <url> failed"
    assert normalise("connect postgres://app:secret@db.example.com/app refused") == "connect <url> refused"


def test_e_mail_addresses() -> None:
    assert normalise("invalid recipient ann.lee+x@example.co.uk") == "invalid recipient <email>"


def test_posix_paths() -> None:
    assert normalise("No such file /var/data/report-2026.csv") == "No such file <path>"
    assert normalise("open ./tmp/a, ../b and ~/c") == "open <path>, <path> and <path>"
    # a line number after a path is a number of its own
    assert normalise("at /srv/app/jobs/archive.rb:10") == "at <path>:<n>"


def test_windows_paths() -> None:
    assert normalise(r"cannot read C:\Users\ann\report.txt") == "cannot read <path>"
    assert normalise(r"share \\fileserver\exports\x.csv offline") == "share <path> offline"


def test_quoted_values_in_every_quote() -> None:
    assert normalise("invalid recipient 'customer0'") == "invalid recipient '<…>'"
    assert normalise('key "a b c" missing') == 'key "<…>" missing'
    assert normalise("column `total` unknown") == "column `<…>` unknown"
    assert normalise("undefined method `name' for nil") == "undefined method `<…>' for nil"


def test_apostrophes_in_words_are_no_quotes() -> None:
    assert normalise("can't charge: won't retry") == "can't charge: won't retry"


def test_a_quoted_placeholder_keeps_what_it_holds() -> None:
    assert normalise("No such file: '/tmp/a.txt'") == "No such file: '<path>'"


def test_hex() -> None:
    assert normalise("segfault at 0x7ffd1c2a") == "segfault at <hex>"
    assert normalise("commit 3fa2b1c9d0e1 missing") == "commit <hex> missing"
    # 8 letters a-f with no digit are a word, 8 digits a number
    assert normalise("defacedbeef 12345678") == "defacedbeef <n>"


def test_ips() -> None:
    assert normalise("connect 10.0.12.7:5432 refused") == "connect <ip>:<n> refused"
    assert normalise("from fe80:0:0:0:202:b3ff:fe1e:8329") == "from <ip>"


def test_numbers_ints_floats_signed() -> None:
    assert normalise("order 1001 over limit 2.50 by -3 (1e10)") == "order <n> over limit <n> by <n> (<n>)"
    assert normalise("failed after 3.") == "failed after <n>."
    assert normalise("at 2026-12-07 19:36:49") == "at <n>-<n>-<n> <n>:<n>:<n>"


def test_numbers_glued_to_letters_stay() -> None:
    assert normalise("Http404 from S3 for customer0 user_42 in 30s utf8") == (
        "Http404 from S3 for customer0 user_42 in 30s utf8"
    )


def test_version_strings_stay() -> None:
    assert normalise("requires 2.7.18, found v3") == "requires 2.7.18, found v3"
    assert not same("ValueError: requires 1.2.3", "ValueError: requires 1.2.4")


def test_the_exception_class_is_never_normalised() -> None:
    assert not same("Http404: not found", "Http500: not found")
    assert fingerprint("Http404: page 7").pattern == "Http404: page <n>"
    assert exception_of("Net::ReadTimeout: Net::ReadTimeout") == "Net::ReadTimeout"
    assert exception_of("card declined for order 1001") == ""


def test_differing_only_in_an_id_email_uuid_or_quoted_value_merge() -> None:
    assert same(*(f"ValueError: invalid recipient 'customer{i}'" for i in range(3)))
    assert same("E: order 1 failed", "E: order 22 failed", "E: order -3 failed")
    assert same("E: to a@x.com", "E: to b.c@y.org")
    assert same("E: 123e4567-e89b-12d3-a456-426614174000", "E: 00000000-0000-0000-0000-000000000000")


def test_different_words_or_classes_stay_apart() -> None:
    assert not same("KeyError: 'x'", "IndexError: 'x'")
    assert not same("E: card declined", "E: card expired")


def test_no_error_is_a_group_of_its_own() -> None:
    assert fingerprint(None) == fingerprint("") == fingerprint(NO_ERROR)
    assert fingerprint(None).pattern == NO_ERROR


def test_ids_are_short_stable_and_from_the_first_line() -> None:
    fp = fingerprint("KeyError: 'x'\nTraceback ...")
    assert fp == fingerprint("KeyError: 'y'")
    assert len(fp.id) == 12 and int(fp.id, 16) >= 0
    assert fp.id == "f897a46b83a0"  # a hash of the pattern: the same in every process and release


def test_filters_take_and_write_fingerprints() -> None:
    f = JobFilter.from_params({"fingerprint": "F897A46B83A0"})
    assert f.fingerprint == "f897a46b83a0" and f.to_params() == {"fingerprint": "f897a46b83a0"}
    with pytest.raises(UsageError, match="12 hex digits"):
        JobFilter.from_params({"fingerprint": "nope"})
