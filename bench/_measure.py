"""What the benches read about a process from /proc, shared by bench/concurrency.py and bench/floor.py."""

import os
import time
from pathlib import Path


def cpu_seconds(pid):
    """User + system CPU time of a process (clock ticks → seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def settle(pids, busy=0.05, interval=0.5, timeout=20.0):
    """Wait until the processes together use under ``busy`` of a core, so that work left over from one
    measurement (the app's title requests, say) is not counted in the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(interval)
        if sum(cpu_seconds(pid) for pid in pids) - before < busy * interval:
            return
