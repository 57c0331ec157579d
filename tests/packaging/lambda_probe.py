"""Run inside a clean interpreter (`python -I -S -B lambda_probe.py REQUEST RESULT`) to load a built
Lambda handler the way the Lambda runtime does: only the function's code, its layers and the
standard library are importable. Nothing from the test environment is (no site-packages).

REQUEST is a JSON file: {"path": [...], "handler": "module.attr", "events": [...], "context": {...}}.
RESULT receives JSON: the import outcome and, per event, the handler's answer or the error.
The handler itself logs to stdout, which is why the result goes to a file.

Standard library only: this file must not depend on anything the function does not carry.
"""

import importlib
import json
import sys
import time
import traceback


class FakeLambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    def __init__(self, fields):
        self.function_name = fields["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = "packaging-check"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + fields["timeout_seconds"]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(request_path, result_path):
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    # Exactly what the runtime puts in front of the standard library: task root, then layers.
    sys.path[:0] = request["path"]
    result = {"sys_path": list(sys.path), "imported": False, "callable": False, "invocations": []}
    try:
        module_name, _, attribute = request["handler"].rpartition(".")
        module = importlib.import_module(module_name)
        result["imported"] = True
        result["module_file"] = getattr(module, "__file__", None)
        handler = getattr(module, attribute, None)
        result["has_attribute"] = handler is not None
        result["callable"] = callable(handler)
        for event in request.get("events", []):
            try:
                answer = handler(event, FakeLambdaContext(request["context"]))
                result["invocations"].append({"answer": answer})
            except Exception:
                result["invocations"].append({"error": traceback.format_exc()})
    except Exception:
        result["error"] = traceback.format_exc()
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=repr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
