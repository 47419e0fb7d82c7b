"""Where a Redis job lives is one type (`Place`, and `Segment` for a listing's parts): the id text
and the page cursors it makes are the ones printed before, and read back the same."""

from __future__ import annotations

import pytest

from qadmin.backends.redis.ids import IdParts, make_id, readings
from qadmin.backends.redis.place import Place, Segment
from qadmin.backends.redis.selection import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    ("place", "detail", "text"),
    [
        (Place.DELAYED, "1764000000", "email:4f2a9c1b3d5e@1764000000.2"),
        (Place.FAILED, "0a1b2c3d", "email:4f2a9c1b3d5e@f0a1b2c3d.2"),
        (Place.FINISHED, "9e8d7c6b", "email:4f2a9c1b3d5e@z9e8d7c6b.2"),
    ],
)
def test_an_id_names_its_place_as_before(place: Place, detail: str, text: str) -> None:
    where = place.where(detail)
    assert make_id("email", "4f2a9c1b3d5e", where, 2) == text
    assert readings(text) == {text: IdParts("email", "4f2a9c1b3d5e", where, 2)}


def test_page_cursors_name_segments_by_the_letters_printed_before() -> None:
    assert [s.value for s in Segment] == ["L", "Q", "D", "F", "Z"]
    assert encode_cursor("id", ["Q", "email", 41]) == '["id","Q","email",41]'
    assert decode_cursor('["id","Q","email",41]', "id") == (Segment.QUEUES, "email", 41)
    assert decode_cursor('["-id","D","",[1764000000,3]]', "-id") == (Segment.DELAYED, "", [1764000000, 3])


def test_held_and_listed_places() -> None:
    assert {p for p in Place if p.held} == {Place.LOCKED, Place.HELD}
    assert {p for p in Place if p.indexed} == {Place.QUEUE, Place.DELAYED, Place.FAILED}
