"""How the consumer cuts a batch into chunks and reads records (taskapi.counting.apply), without
DynamoDB: the chunk boundaries depend on the records alone, so a retry meets its markers."""

from __future__ import annotations

import pytest

from taskapi.counting.apply import CHUNK_KEYS, Change, DynamoCounterWriter, StreamShapeError, chunk_end, merged


def keys(*names: str) -> dict[str, dict[str, int]]:
    return {name: {"QUEUED": 1} for name in names}


def test_a_chunk_takes_records_until_one_more_would_move_more_than_its_counters():
    deltas = [keys("A#a", f"G#a#{n}") for n in range(200)]

    assert chunk_end(deltas, 0) == CHUNK_KEYS - 1  # A#a and 97 groups
    assert chunk_end(deltas, 97) == 97 + CHUNK_KEYS - 1
    assert chunk_end(deltas, 194) == 200  # the end of the batch
    assert chunk_end(deltas, 0, max_keys=3) == 2


def test_records_that_move_nothing_or_the_same_counters_do_not_end_a_chunk():
    deltas = [{}, keys("A#a"), {}, keys("A#a"), *[{} for _ in range(1000)]]
    assert chunk_end(deltas, 0, max_keys=1) == len(deltas)


def test_a_record_is_a_chunk_of_its_own_at_least():
    assert chunk_end([keys("A#a", "G#a#g", "S#a#s")], 0, max_keys=1) == 1


def test_merged_deltas_cancel_out():
    assert merged([{"A#a": {"QUEUED": 1}}, {"A#a": {"QUEUED": -1, "PROCESSING": 1}}]) == {"A#a": {"PROCESSING": 1}}
    assert merged([{"A#a": {"QUEUED": 1}}, {"A#a": {"QUEUED": -1}}]) == {}


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("MODIFY", {"Keys": {}, "NewImage": {}}),
        ("REMOVE", {"Keys": {}}),
        ("INSERT", {"Keys": {}}),
    ],
)
def test_a_record_without_the_images_it_needs_is_refused(name, body):
    with pytest.raises(StreamShapeError, match="NEW_AND_OLD_IMAGES"):
        Change.from_record({"eventID": "e1", "eventName": name, "dynamodb": body})


def test_a_record_without_an_event_id_is_refused():
    with pytest.raises(StreamShapeError, match="eventID"):
        Change.from_record({"eventName": "INSERT", "dynamodb": {"NewImage": {}}})


@pytest.mark.parametrize("max_keys", [0, CHUNK_KEYS + 1])
def test_a_chunk_moves_between_1_and_98_counters(max_keys):
    with pytest.raises(ValueError, match="1 to 98"):
        DynamoCounterWriter(object(), "t", max_keys=max_keys)
