"""Where a server's CPU goes during a bench: py-spy recording its processes, and a summary of the samples.

Used by bench/concurrency.py's --profile.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path


def start_profiler(server, path):
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    pid = server.proc.pid
    # --gil: only the thread holding the GIL, i.e. where CPU goes, not threads waiting on locks or sockets.
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", path, "--rate", "200", "--gil"]
    if pid not in server.pids():
        command.append("--subprocesses")  # gunicorn: the workers are the master's children
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Frames on nearly every stack (event loop, threads, servers): they say nothing about where the time goes.
PLUMBING = re.compile(
    r"\((asyncio/|threading\.py|concurrent/|gunicorn/|selectors\.py|uvicorn/|asgiref/|click/|<string>|<frozen)"
    r"|^<module>"
)


def summarize_profile(path, top=15):
    """Where the server's samples went: functions by own samples and by samples with them on the stack."""
    own, inclusive, total = {}, {}, 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        # "function (path/to/file.py:line)" without the line, the path shortened to its package
        frames = [re.sub(r":\d+\)$", ")", re.sub(r"\(.*?(site-packages|lib/python3\.\d+|/work/main)/", "(", f))
                  for f in stack.split(";") if not f.startswith("process ")]
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            if not PLUMBING.search(frame):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
    for title, table in (("own samples", own), ("on the stack", inclusive)):
        print(f"profile, top {top} by {title} ({total} samples):")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:top]:
            print(f"  {count / total * 100:5.1f}%  {frame}")
