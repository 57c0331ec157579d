"""Peak memory as Lambda reports it (Max Memory Used = VmHWM), read from /proc/self of a child
process that runs one measured job: tests/perf/ingest_child.py and tests/perf/test_render_speed.py."""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def status_kib(field: str) -> int | None:
    """A field of /proc/self/status such as "VmHWM:   1234 kB", in KiB (None where there is no procfs)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """VmHWM back to the current RSS (Linux 4.0+: write 5 to clear_refs)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
