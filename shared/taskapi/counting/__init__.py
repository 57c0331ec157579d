"""Counts of tasks kept in the counters table (template.yaml CountersTable) from the tasks table's
stream, so that the ceiling, `total` and the count endpoints read a few items whatever the backlog.

- contributions: what one task item adds to which counter (its keys and attributes), and the
  delta between two images of a task (a stream record's OldImage and NewImage).
- apply: the stream consumer's side: deltas of stream records added to the counters, in
  chunks that each commit with a marker, so a redelivered batch is never counted twice.
- store: the reading side (DynamoCounterStore: counters by key, BatchGetItem).

Counter items (key `counter_key`; every number is an N, absent = 0):
  A#<account_id>            one attribute per status, QUEUED#<priority> and PROCESSING#<priority>,
                            HELD (PENDING/QUEUED/PROCESSING with request_data: the ceiling's count)
  G#<account_id>#<group_id> one attribute per status
  S#<account_id>#<source_id> one attribute per status
  each with rev (ADD 1 on every update of the consumer) and changed_at (ISO time of that update);
  M#<eventID>               a chunk marker of the consumer (applied records, expires_at)
"""
