"""Bounds on what a client may send, chosen so that 100 tasks always fit one DynamoDB transaction
(4 MB, 100 items of at most 400 KB) with room to spare for events and results."""

MAX_BULK_TASKS = 100
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100
MAX_FILTER_IDS = 100
"""task_ids / task_source_ids values in one list or count query."""

ID_PATTERN = r"^[A-Za-z0-9._:@~+=-]+$"
"""Task ids are used in URL paths and comma-separated filters, so no '/', ',', '#', whitespace."""
ID_CHARACTERS = "letters, digits and . _ : @ ~ + = -"
RESERVED_TASK_IDS = frozenset({"bulk", "bulk-cancel", "bulk-regenerate", "requeue-pending"})
"""Ids that are fixed paths under /api/tasks/: a task so named could not be read at /api/tasks/{id}."""
"""ID_PATTERN in words, for error messages."""
SOURCE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
"""task_source_id, task_source_group_id and task_source_name: any text without control characters
("Math 101", "Cours d'été", "数学"). Filters take them URL-encoded."""
ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Account ids are embedded in API keys ("tk.<account>.<key id>.<secret>"), so no dots."""
MAX_TASK_ID_LENGTH = 128
MAX_SOURCE_ID_LENGTH = 256
MAX_SOURCE_NAME_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_PROMPT_LENGTH = 20_000
MAX_REQUEST_DATA_BYTES = 24 * 1024
"""Serialized JSON size of one task's request_data: 100 of them stay under 2.5 MB."""
MAX_SEGMENTS = 50
MAX_QUESTIONS = 50
MAX_FILTER_SOURCE_IDS = 50
"""task_source_ids values in one query: one DynamoDB Query each."""
