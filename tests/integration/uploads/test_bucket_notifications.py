"""Provisioning gives the uploads bucket the template's notification: every object created under
uploads/ sends an S3 event to the ingest queue (moto 5.2 sends them, as S3 does), nothing else."""

from __future__ import annotations

import json

import boto3

from infra.provision import bucket_notifications, provision
from infra.template import LocalNames, load_template, resolve


def messages(sqs, queue_url: str) -> list[dict]:
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(message["Body"]) for message in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )


def test_the_template_notification_becomes_the_api_shape():
    names = LocalNames()
    template = load_template()
    props = resolve(template["Resources"]["UploadsBucket"]["Properties"], template, names)

    assert bucket_notifications(props) == {
        "QueueConfigurations": [
            {
                "QueueArn": f"arn:aws:sqs:{names.region}:{names.account}:{names.physical_name('IngestQueue')}",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    }
    assert bucket_notifications({}) == {}


def test_objects_under_uploads_notify_the_ingest_queue(aws_env):
    session = boto3.Session(region_name="us-east-1")
    s3, sqs = session.client("s3"), session.client("sqs")
    bucket, queue = aws_env["UploadsBucket"], aws_env["IngestQueue"]
    assert [m["Event"] for m in messages(sqs, queue)] == ["s3:TestEvent"]  # sent once, when configured

    provision(session, LocalNames())  # again: the notification is unchanged, so not put (no test event)
    s3.put_object(Bucket=bucket, Key="uploads/acct_a/some file+1", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="reports/acct_a/x.jsonl", Body=b"{}\n")

    (event,) = messages(sqs, queue)
    (record,) = event["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] == "uploads%2Facct_a%2Fsome+file%2B1"  # URL-encoded, "/" too
    assert record["s3"]["object"]["size"] == 3
