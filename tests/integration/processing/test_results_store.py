"""S3ResultStore on moto's S3, with the results bucket of template.yaml."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from taskapi.engines.base import Artifact, ArtifactFile
from taskapi.results import result_prefix
from tests.integration.processing.support import keys_under

ARTIFACT = Artifact(
    files=(
        ArtifactFile("quiz.json", "application/json", b'{"questions": []}'),
        ArtifactFile("quiz.md", "text/markdown; charset=utf-8", b"# Quiz\n"),
    ),
    primary="quiz.json",
    summary={"questions": 0},
)


def test_put_stores_every_file_under_the_prefix_and_answers_the_primary_key(s3, results, bucket):
    prefix = result_prefix("acct_a", "t1", 2)

    key = results.put(prefix, ARTIFACT)

    assert prefix == "results/acct_a/t1/attempt-2/"
    assert key == "results/acct_a/t1/attempt-2/quiz.json"
    assert keys_under(s3, bucket, "results/") == [key, "results/acct_a/t1/attempt-2/quiz.md"]
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == b'{"questions": []}'
    assert stored["ContentType"] == "application/json"


def test_url_is_a_presigned_get_of_that_key_in_the_results_bucket(results, bucket):
    key = results.put(result_prefix("acct_a", "t1", 1), ARTIFACT)

    url = results.url(key)

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert isinstance(url, str)
    assert parts.scheme == "https"
    assert bucket in parts.netloc + parts.path
    assert parts.path.endswith("/" + key)
    if "X-Amz-Signature" in query:  # SigV4
        assert query["X-Amz-Expires"] == ["3600"]
    else:  # SigV2: an absolute expiry time
        assert "Signature" in query
        assert 3600 - 60 < int(query["Expires"][0]) - time.time() <= 3600


def test_delete_removes_every_file_of_the_artifact_and_only_those(s3, results, bucket):
    kept = results.put(result_prefix("acct_a", "t1", 1), ARTIFACT)
    results.put(result_prefix("acct_a", "t1", 2), ARTIFACT)

    results.delete(result_prefix("acct_a", "t1", 2), ARTIFACT)

    assert keys_under(s3, bucket, "results/") == [kept, "results/acct_a/t1/attempt-1/quiz.md"]
