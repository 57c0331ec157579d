"""The DynamoDB capacity meter of the benchmarks (tests/support/capacity.py): item sizes and unit
rules against DynamoDB's documented examples, then the meter on a client (moto's in-process
DynamoDB, no sockets) for each kind of write and read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.capacity import (
    TABLE,
    CapacityMeter,
    Index,
    TableSchema,
    attribute_size,
    failed_write_units,
    item_size,
    number_size,
    read_units_of,
    write_charges,
    write_units_of,
)

KB = 1024


def text(n: int) -> dict[str, str]:
    return {"S": "x" * n}


# ------------------------------------------------------------------ sizes
def test_a_string_is_its_utf8_length_and_the_name_counts_too() -> None:
    assert attribute_size({"S": "héllo"}) == 6
    assert item_size({"name": {"S": "héllo"}}) == 4 + 6


@pytest.mark.parametrize(
    ("number", "size"),
    [("7", 2), ("12", 2), ("123", 3), ("12345", 4), ("1000", 2), ("0.0100", 2), ("-1.5", 2), ("0", 1), ("1E+5", 2)],
)
def test_a_number_costs_a_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size


def test_binary_boolean_null_and_sets() -> None:
    assert attribute_size({"B": b"\x00\x01\x02"}) == 3
    assert attribute_size({"B": "AAEC"}) == 3  # the wire form, base64
    assert attribute_size({"BOOL": True}) == attribute_size({"NULL": True}) == 1
    assert attribute_size({"SS": ["ab", "cde"]}) == 5
    assert attribute_size({"NS": ["1", "12345"]}) == 2 + 4


def test_lists_and_maps_cost_3_bytes_plus_1_per_element() -> None:
    assert attribute_size({"L": []}) == attribute_size({"M": {}}) == 3
    assert attribute_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (2 + 1) + (2 + 1)
    assert attribute_size({"M": {"key": {"S": "v"}}}) == 3 + (3 + 1 + 1)
    nested = {"M": {"events": {"L": [{"M": {"m": {"S": "ok"}}}]}}}
    assert attribute_size(nested) == 3 + (6 + (3 + ((3 + (1 + 2 + 1)) + 1)) + 1)


# ------------------------------------------------------------------ documented unit examples
def test_writes_round_up_to_1_kb() -> None:
    """ "Writing a 500-byte item consumes the same throughput as writing a 1 KB item"; 1.5 KB: 2."""
    assert write_units_of(500) == 1
    assert write_units_of(KB) == 1
    assert write_units_of(1536) == 2
    assert write_units_of(0) == 1  # deleting an absent item still costs a unit


def test_reads_round_up_to_4_kb_and_eventual_ones_cost_half() -> None:
    """3,500 bytes read like 4 KB; 8 KB: 2 units strongly consistent, 1 eventually; 10 KB: 12 KB."""
    assert read_units_of(3500, consistent=True) == 1
    assert read_units_of(8 * KB, consistent=True) == 2
    assert read_units_of(8 * KB, consistent=False) == 1
    assert read_units_of(10 * KB, consistent=True) == 3
    assert read_units_of(0, consistent=True) == 1  # an absent item costs the minimum
    assert read_units_of(0, consistent=False) == 0.5


def test_batch_get_rounds_each_item_and_query_rounds_the_total() -> None:
    """BatchGetItem of 1.5 KB and 6.5 KB items reads 4 + 8 = 12 KB; a Query returning 40.8 KB
    in all reads 44 KB."""
    assert read_units_of(1536, consistent=True) + read_units_of(6656, consistent=True) == 3
    assert read_units_of(int(40.8 * KB), consistent=True) == 11
    assert read_units_of(int(40.8 * KB), consistent=False) == 5.5


# ------------------------------------------------------------------ write plans
SCHEMA = TableSchema(
    name="t",
    keys=("pk", "sk"),
    indexes=(
        Index("all", ("g1",), "ALL"),
        Index("keys", ("g2", "g2s"), "KEYS_ONLY"),
        Index("some", ("g1",), "INCLUDE", ("note",)),
    ),
)


def item(**attributes: Any) -> dict[str, Any]:
    base = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    return {**base, **{name: value if isinstance(value, dict) else {"S": value} for name, value in attributes.items()}}


def test_a_new_small_item_is_one_unit_for_the_table_and_each_index_it_enters() -> None:
    assert write_charges(SCHEMA, None, item(g1="x", g2="y", g2s="z")) == {TABLE: 1, "all": 1, "keys": 1, "some": 1}


def test_a_sparse_index_without_its_key_is_not_written() -> None:
    assert write_charges(SCHEMA, None, item(g1="x")) == {TABLE: 1, "all": 1, "some": 1}


def test_a_1_5_kb_item_costs_2_units_where_it_is_projected_whole() -> None:
    charges = write_charges(SCHEMA, None, item(g1="x", g2="y", g2s="z", body=text(1536)))
    assert charges == {TABLE: 2, "all": 2, "keys": 1, "some": 1}


def test_changing_an_attribute_a_keys_only_index_does_not_project_writes_nothing_there() -> None:
    before = item(g1="x", g2="y", g2s="z", body="old")
    after = item(g1="x", g2="y", g2s="z", body="new")
    assert write_charges(SCHEMA, before, after) == {TABLE: 1, "all": 1}


def test_an_include_index_is_written_when_an_included_attribute_changes() -> None:
    before = item(g1="x", note="old")
    after = item(g1="x", note="new")
    assert write_charges(SCHEMA, before, after) == {TABLE: 1, "all": 1, "some": 1}


def test_a_changed_index_key_is_a_delete_and_a_put() -> None:
    before = item(g1="x", g2="y", g2s="1")
    after = item(g1="x", g2="y", g2s="2")
    assert write_charges(SCHEMA, before, after) == {TABLE: 1, "all": 1, "keys": 2}  # "some" projects no g2s


def test_losing_an_index_key_deletes_the_entry() -> None:
    assert write_charges(SCHEMA, item(g2="y", g2s="1"), item()) == {TABLE: 1, "keys": 1}


def test_the_base_table_costs_the_larger_of_before_and_after() -> None:
    assert write_charges(SCHEMA, item(body=text(3000)), item(body="small")) == {TABLE: 3}
    assert write_charges(SCHEMA, item(body=text(3000)), None) == {TABLE: 3}


def test_a_failed_conditional_write_costs_the_base_table_only() -> None:
    assert failed_write_units(item(body="small")) == 1
    assert failed_write_units(item(body="small"), item(body=text(1536))) == 2
    assert failed_write_units(None) == 1


# ------------------------------------------------------------------ the meter on a client
@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[Any, Any]]:
    """A metered client and the meter's reader, made once (a client costs a service model load)."""
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session.client("dynamodb"), session.client("dynamodb")


@pytest.fixture
def reader(clients: tuple[Any, Any]) -> Any:
    return clients[1]


@pytest.fixture
def dynamodb(clients: tuple[Any, Any]) -> Iterator[Any]:
    """Table t: key (pk, sk), a GSI "all" on g1 projecting ALL, and "keys" on (g2, g2s), KEYS_ONLY."""
    client = clients[0]
    client.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g1", "g2", "g2s")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "all",
                "KeySchema": [{"AttributeName": "g1", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "keys",
                "KeySchema": [
                    {"AttributeName": "g2", "KeyType": "HASH"},
                    {"AttributeName": "g2s", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    )
    yield client
    client.delete_table(TableName="t")


@pytest.fixture
def meter(dynamodb: Any, reader: Any) -> Iterator[CapacityMeter]:
    meter = CapacityMeter(dynamodb, reader=reader)
    yield meter
    meter.close()


def put(client: Any, **attributes: Any) -> None:
    client.put_item(TableName="t", Item=item(**attributes))


def test_the_schema_comes_from_describe_table(meter: CapacityMeter) -> None:
    schema = meter.schema("t")
    assert schema.keys == ("pk", "sk")
    assert [(i.name, i.keys, i.projection) for i in schema.indexes] == [
        ("all", ("g1",), "ALL"),
        ("keys", ("g2", "g2s"), "KEYS_ONLY"),
    ]


def test_put_of_a_small_item(dynamodb: Any, meter: CapacityMeter) -> None:
    with meter.measuring() as used:
        put(dynamodb, g1="x", g2="y", g2s="z")
    assert used.by("target") == {TABLE: 1, "all": 1, "keys": 1}
    assert used.write_units() == 3
    assert used.read_units() == 0


def test_put_of_a_1_5_kb_item(dynamodb: Any, meter: CapacityMeter) -> None:
    with meter.measuring() as used:
        put(dynamodb, g1="x", body=text(1536))
    assert used.by("target") == {TABLE: 2, "all": 2}


def test_update_of_an_attribute_the_keys_only_index_does_not_project(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, g1="x", g2="y", g2s="z", body="old")
    with meter.measuring() as used:
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
            UpdateExpression="SET body = :b",
            ExpressionAttributeValues={":b": {"S": "new"}},
        )
    assert used.by("target") == {TABLE: 1, "all": 1}


def test_update_of_an_index_key_is_a_delete_and_a_put(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, g2="y", g2s="1")
    with meter.measuring() as used:
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
            UpdateExpression="SET g2s = :s",
            ExpressionAttributeValues={":s": {"S": "2"}},
        )
    assert used.by("target") == {TABLE: 1, "keys": 2}


def test_delete(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, g1="x", body=text(2000))
    with meter.measuring() as used:
        dynamodb.delete_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
        dynamodb.delete_item(TableName="t", Key={"pk": {"S": "absent"}, "sk": {"S": "1"}})
    assert used.by("target") == {TABLE: 2 + 1, "all": 2}


def test_a_transaction_doubles_every_unit(dynamodb: Any, meter: CapacityMeter) -> None:
    with meter.measuring() as used:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": item(g1="x", g2="y", g2s="z")}},
                {"Put": {"TableName": "t", "Item": {**item(g1="x", body=text(1536)), "sk": {"S": "2"}}}},
            ]
        )
    assert used.by("target") == {TABLE: 2 * (1 + 2), "all": 2 * (1 + 2), "keys": 2}


def test_a_failed_condition_charges_the_base_table_only(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, g1="x", g2="y", g2s="z")
    with meter.measuring() as used, pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName="t", Item=item(g1="x", body=text(1536)), ConditionExpression="attribute_not_exists(pk)"
        )
    assert used.by("target") == {TABLE: 2}


def test_a_cancelled_transaction_charges_each_item_s_base_table_doubled(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, g1="x")
    new = {**item(g1="x"), "sk": {"S": "2"}}
    with meter.measuring() as used, pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": item(g1="x"), "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": "t", "Item": new, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    assert used.by("target") == {TABLE: 2 + 2}


def test_batch_write_charges_each_item(dynamodb: Any, meter: CapacityMeter) -> None:
    with meter.measuring() as used:
        dynamodb.batch_write_item(
            RequestItems={
                "t": [
                    {"PutRequest": {"Item": item(g1="x")}},
                    {"PutRequest": {"Item": {**item(body=text(1536)), "sk": {"S": "2"}}}},
                ]
            }
        )
    assert used.by("target") == {TABLE: 1 + 2, "all": 1}


def test_get_item_consistent_eventual_and_absent(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, body=text(5000))
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    with meter.measuring() as consistent:
        dynamodb.get_item(TableName="t", Key=key, ConsistentRead=True)
    with meter.measuring() as eventual:
        dynamodb.get_item(TableName="t", Key=key, ProjectionExpression="pk")  # projected: the item's size counts
    with meter.measuring() as absent:
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "b"}, "sk": {"S": "1"}}, ConsistentRead=True)
    assert (consistent.read_units(), consistent.items_read()) == (2, 1)
    assert eventual.read_units() == 1
    assert (absent.read_units(), absent.items_read()) == (1, 0)


def test_batch_get_rounds_each_item(dynamodb: Any, meter: CapacityMeter) -> None:
    put(dynamodb, body=text(1536))
    dynamodb.put_item(TableName="t", Item={**item(body=text(6656)), "sk": {"S": "2"}})
    keys = [{"pk": {"S": "a"}, "sk": {"S": s}} for s in ("1", "2")]
    with meter.measuring() as used:
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": keys, "ConsistentRead": True}})
    assert used.read_units() == 1 + 2
    assert used.items_read() == 2


def test_a_query_reads_every_item_it_evaluates_filtered_or_counted(dynamodb: Any, meter: CapacityMeter) -> None:
    for n in range(10):
        dynamodb.put_item(TableName="t", Item={**item(g1="x", body=text(1000)), "sk": {"S": f"{n}"}})
    query = {
        "TableName": "t",
        "IndexName": "all",
        "KeyConditionExpression": "g1 = :g",
        "ExpressionAttributeValues": {":g": {"S": "x"}},
    }
    with meter.measuring() as plain:
        assert dynamodb.query(**query)["Count"] == 10
    with meter.measuring() as filtered:
        answer = dynamodb.query(
            **{**query, "ExpressionAttributeValues": {":g": {"S": "x"}, ":s": {"S": "3"}}},
            FilterExpression="sk = :s",
        )
        assert answer["Count"] == 1
    with meter.measuring() as counted:
        dynamodb.query(**query, Select="COUNT")
    size = item_size({**item(g1="x", body=text(1000)), "sk": {"S": "0"}})
    expected = read_units_of(10 * size, consistent=False)
    assert expected == 1.5
    for used in (plain, filtered, counted):
        assert (used.read_units(target="all"), used.items_read()) == (expected, 10)


def test_a_sampled_meter_estimates_big_filtered_queries(dynamodb: Any, reader: Any) -> None:
    for n in range(10):
        dynamodb.put_item(TableName="t", Item={**item(g1="x", body=text(1000)), "sk": {"S": f"{n}"}})
    sampled = CapacityMeter(dynamodb, reader=reader, sample=2)
    with sampled.measuring() as used:
        dynamodb.query(
            TableName="t",
            IndexName="all",
            KeyConditionExpression="g1 = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
            Select="COUNT",
        )
    sampled.close()
    assert (used.read_units(), used.items_read()) == (1.5, 10)


def test_measuring_blocks_nest_and_reset_clears_the_totals(dynamodb: Any, meter: CapacityMeter) -> None:
    with meter.measuring() as outer:
        put(dynamodb, g1="x")
        with meter.measuring() as inner:
            dynamodb.put_item(TableName="t", Item={**item(), "sk": {"S": "2"}})
    assert (outer.write_units(), inner.write_units()) == (3, 1)
    assert meter.totals().write_units() == 3
    meter.reset()
    assert meter.totals().charges == []


def test_labels_come_from_the_classifier(dynamodb: Any, reader: Any) -> None:
    labelled = CapacityMeter(
        dynamodb,
        reader=reader,
        classify=lambda operation, params: "insert" if operation == "PutItem" else None,
    )
    with labelled.measuring() as used:
        put(dynamodb, g1="x")
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    labelled.close()
    assert used.by("label") == {"insert": 2, "GetItem": 0}
    assert used.breakdown() == "insert: table 1, all 1"
    assert used.breakdown("read_units") == "GetItem: table 0.5"
