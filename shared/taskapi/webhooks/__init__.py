"""Push (issue 16): signed webhooks per Standard Webhooks, their endpoints and deliveries, the
account's events and the EventBridge bus. Models and signing have no AWS dependency (the client
verifies signatures with taskapi.webhooks.signing); the adapters live in store, queue and
eventstore; delivery is the worker's rules; transport is the one SSRF-safe POST."""
