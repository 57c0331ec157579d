"""Uploads: files of tasks dropped in S3 through a presigned POST, ingested by functions/ingest.

- ``model``: the upload record (status, counts, who uploaded it) and its object keys.
- ``store``: the UploadStore interface and its in-memory fake; ``dynamodb``: the DynamoDB adapter.
- ``files``: the uploads bucket (presigned POST and GET, streaming reads, report writes).
- ``service``: what the HTTP routes call (create an upload, read one).
- ``events``: S3 event notifications as SQS delivers them.
- ``ingest``: the ingest service (loaded by functions/ingest only: the API never imports it).
"""
