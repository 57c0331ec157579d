"""The cold-import baseline: the least a FastAPI Lambda behind Mangum that talks to DynamoDB
imports and builds at module level. tests/perf/test_cold_import.py compares the API handler to it."""

import boto3
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()
dynamodb = boto3.client("dynamodb")


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"message": "hello"}


handler = Mangum(app, lifespan="off")
