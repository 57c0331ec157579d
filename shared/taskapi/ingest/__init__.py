"""S3 ingest: files of tasks uploaded by users, created in chunks through the same service as
POST /api/tasks/bulk. taskapi.ingest.formats parses and validates them (no I/O of its own)."""
