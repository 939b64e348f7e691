"""Memory and time of checking one upload: a plain 12 MP photo beside files built to be costly to decode.

Usage (from the repository root):

    .venv/bin/python bench/images.py            # the upload rows (~1 min), then the image turns (~1 min)
    .venv/bin/python bench/images.py --uploads  # the upload rows only

Each input is measured two ways. "in-process" is ``normalize_image`` in the calling process, as uploads ran
before chat/uploads/isolation.py (with today's header checks). "upload" is the upload path: the header checked in
the web process, then one decoding child with capped memory. Peak memory is measured in a fresh interpreter
per operation (VmHWM, i.e. peak RSS; see _proc_status), minus a baseline interpreter that only imported the
modules and read the bytes, so the figure is what one upload adds to a worker; the decoding child reports its own
VmHWM growth over its start, and "total" adds the two (what the dyno holds at the peak). Times are medians of
--runs calls in this process, the forkserver already started (its start-up is printed once). tracemalloc is not
used: Pillow allocates pixel buffers in C, outside its view.

Then bench/image_turns.py's table: peak memory of 10 concurrent turns with 20 images each, beside 10 text-only
turns (it runs alone too).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from PIL import Image

from chat.uploads.images import ImageRejected, Limits, normalize_image, open_checked
from chat.uploads.isolation import decode_in_child, normalize_isolated
from tests import hostile_images as hostile

import image_turns  # bench/image_turns.py, beside this file

BOUND_MB = 150  # issue 14: no upload may add more to a worker


def photo(size, grain):
    """Gradients, soft blobs and per-pixel grain: compresses like a photo, not like a flat fill."""
    width, height = size
    grain_layer = Image.effect_noise(size, grain)
    blobs = Image.effect_noise((width // 64, height // 64), 80).resize(size, Image.Resampling.BICUBIC)
    red = Image.blend(Image.linear_gradient("L").resize(size), grain_layer, 0.3)
    green = Image.blend(Image.radial_gradient("L").resize(size), blobs, 0.5)
    return Image.merge("RGB", (red, green, Image.blend(blobs, grain_layer, 0.5)))


def upload_inputs():
    """The plain photo first, then one file of each kind issue 14 measured."""
    return {
        "JPEG photo 4000x3000 (12 MP)": hostile.encode(photo((4000, 3000), 24), "JPEG", quality=90),
        "progressive CMYK JPEG 100 MP": hostile.progressive_jpeg(10_000, "CMYK"),
        "progressive 4:4:4 JPEG 100 MP": hostile.progressive_jpeg(10_000),
        "animated WebP 5400x5400": hostile.animated_webp(5_400),
        "16-bit grey PNG 30 MP": hostile.sixteen_bit_grey_png((6_000, 5_000)),
        "GIF 30 MP screen, 1x1 frame": hostile.gif_with_tiny_frame((6_000, 5_000)),
        "palette PNG 30 MP": hostile.palette_png((6_000, 5_000)),
        "RGBA PNG 30 MP (nothing to convert)": hostile.truecolour_png((6_000, 5_000), "RGBA"),
    }


def upload_path(data):
    """What POST /attachments/ does with the bytes (chat.uploads.attachments.normalize, minus the thread)."""
    return normalize_isolated(data)


OPERATIONS = {"in-process": normalize_image, "upload": upload_path}


def _proc_status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def run_child(operation, path):
    """In a fresh interpreter: one operation on the file, then its peaks as JSON on stdout."""
    data = Path(path).read_bytes()
    child_growth, outcome = 0, "-"
    if operation == "in-process":
        outcome = _outcome(normalize_image, data)
    elif operation == "upload":
        try:
            open_checked(data, Limits())
            answer = decode_in_child(data, Limits(), seconds=60)
            child_growth = answer.peak_growth_bytes
            outcome = _describe(answer.image) if answer.image else f"refused: {answer.message}"
        except ImageRejected as exc:
            outcome = f"refused: {exc.user_message}"
    print(json.dumps({"max_rss": _proc_status("VmHWM"), "child_growth": child_growth, "outcome": outcome}))


def _describe(image):
    return f"{image.format} {image.width}x{image.height}"


def _outcome(operation, data):
    try:
        return _describe(operation(data))
    except ImageRejected as exc:
        return f"refused: {exc.user_message}"


def child_peaks(operation, path):
    command = [sys.executable, __file__, "--child", operation, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return json.loads(result.stdout)


def median_ms(operation, data, runs):
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        _outcome(operation, data)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls) * 1e3


def measure_upload(name, data, workdir, runs):
    """One row: per operation, the web process's and the child's growth in MB, the median ms, the outcome."""
    path = Path(workdir) / "input.bin"
    path.write_bytes(data)
    baseline = child_peaks("baseline", path)["max_rss"]
    row = {"name": name, "file_mb": len(data) / 1e6}
    for operation, function in OPERATIONS.items():
        peaks = child_peaks(operation, path)
        row[operation] = {
            "web_mb": (peaks["max_rss"] - baseline) / 2**20,
            "child_mb": peaks["child_growth"] / 2**20,
            "ms": median_ms(function, data, runs),
            "outcome": peaks["outcome"],
        }
    return row


def forkserver_startup_ms():
    """The first decode in a process starts the forkserver (Pillow imported once); later children fork from it."""
    tiny = hostile.palette_png((16, 16))
    start = time.perf_counter()
    normalize_isolated(tiny)
    cold = time.perf_counter() - start
    warm = statistics.median(_timed(normalize_isolated, tiny) for _ in range(5))
    in_process = statistics.median(_timed(normalize_image, tiny) for _ in range(5))
    return cold * 1e3, warm * 1e3, in_process * 1e3, _forkserver_rss_mb()


def _forkserver_rss_mb():
    """The forkserver's own resident memory: an idle cost of every web process that has decoded an upload."""
    from multiprocessing import forkserver

    pid = forkserver._forkserver._forkserver_pid  # not public; only read here, for the figure
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def _timed(function, data):
    start = time.perf_counter()
    function(data)
    return time.perf_counter() - start


def print_upload_rows(rows, startup):
    cold, warm, in_process, server_mb = startup
    print(f"\nForkserver start-up (first upload of a process): {cold:.0f} ms, then {server_mb:.0f} MB resident while"
          f" idle; a 16x16 PNG through a child takes {warm:.1f} ms against {in_process:.1f} ms in-process (the"
          " per-upload cost of the child).")
    print(f"Peak memory added to a worker, MB (bound {BOUND_MB}); time per upload, median ms.\n")
    header = (f"{'input':<36} {'file MB':>7} | {'in-process':>10} {'ms':>7} | {'upload: web':>11} {'child':>6}"
              f" {'total':>6} {'ms':>7} | outcome of the upload")
    print(header)
    print("-" * len(header))
    for row in rows:
        before, after = row["in-process"], row["upload"]
        total = after["web_mb"] + after["child_mb"]
        print(f"{row['name']:<36} {row['file_mb']:7.2f} | {before['web_mb']:10.1f} {before['ms']:7.1f} |"
              f" {after['web_mb']:11.1f} {after['child_mb']:6.1f} {total:6.1f} {after['ms']:7.1f} | {after['outcome']}")
    worst = max(max(r["in-process"]["web_mb"], r["upload"]["web_mb"] + r["upload"]["child_mb"]) for r in rows)
    print(f"\nLargest row: {worst:.1f} MB ({'under' if worst < BOUND_MB else 'OVER'} the {BOUND_MB} MB bound)")


def upload_rows(runs):
    """Build the inputs, measure each, print the table."""
    print("Generating inputs...", flush=True)
    inputs = upload_inputs()
    startup = forkserver_startup_ms()
    with tempfile.TemporaryDirectory() as workdir:
        rows = [measure_upload(name, data, workdir, runs) for name, data in inputs.items()]
    print_upload_rows(rows, startup)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="calls per median time")
    parser.add_argument("--uploads", action="store_true", help="only the upload rows, not the image turns")
    parser.add_argument("--child", nargs=2, metavar=("OPERATION", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    upload_rows(args.runs)
    if not args.uploads:
        print()
        image_turns.main()


if __name__ == "__main__":
    main()
