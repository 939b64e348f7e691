"""Time and memory of chat.images.normalize_image on large uploads.

Usage (from the repository root):

    .venv/bin/python bench/images.py            # 24 MP JPEG and 12 MP PNG
    .venv/bin/python bench/images.py --limit    # also a PNG at the 30 MP and a JPEG at the 100 MP pixel limit

Times are medians of 3 runs in this process. Peak memory is measured in a fresh
subprocess per operation (VmHWM, i.e. peak RSS; see peak_rss), minus a baseline subprocess that only
imports the module and reads the input bytes, so the figure is what one upload
adds to a worker. tracemalloc is not used: Pillow allocates pixel buffers in C,
outside its view, so it would under-report by two orders of magnitude.
"""

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from PIL import Image

from chat.uploads.images import MAX_PIXELS, MAX_PIXELS_LOSSLESS, normalize_image

RUNS = 3


def header_only(data):
    """The cheapest possible look at an upload: the reference for time ratios."""
    Image.open(io.BytesIO(data)).size


def full_decode(data):
    """What a naive implementation does first: decode every pixel at full size."""
    Image.open(io.BytesIO(data)).load()


OPERATIONS = {"header": header_only, "decode": full_decode, "normalize": normalize_image}


def photo(size, grain):
    """Gradients, soft blobs and per-pixel grain: compresses like a photo, not like a flat fill."""
    width, height = size
    grain_layer = Image.effect_noise(size, grain)
    blobs = Image.effect_noise((width // 64, height // 64), 80).resize(size, Image.Resampling.BICUBIC)
    red = Image.blend(Image.linear_gradient("L").resize(size), grain_layer, 0.3)
    green = Image.blend(Image.radial_gradient("L").resize(size), blobs, 0.5)
    return Image.merge("RGB", (red, green, Image.blend(blobs, grain_layer, 0.5)))


def encoded(img, fmt, **params):
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def build_inputs(include_limit):
    inputs = {
        "JPEG 6000x4000 (24 MP)": encoded(photo((6000, 4000), 24), "JPEG", quality=90),
        "PNG 4000x3000 (12 MP)": encoded(photo((4000, 3000), 8), "PNG", compress_level=6),
    }
    if include_limit:
        # Smooth on purpose: each must fit the upload cap while holding the most pixels allowed.
        side = int(MAX_PIXELS_LOSSLESS**0.5)
        flat = Image.linear_gradient("L").resize((side, side)).convert("RGB")
        inputs[f"PNG {side}x{side} (30 MP limit)"] = encoded(flat, "PNG", compress_level=1)
        side = int(MAX_PIXELS**0.5)
        flat = Image.linear_gradient("L").resize((side, side)).convert("RGB")
        inputs[f"JPEG {side}x{side} (100 MP limit)"] = encoded(flat, "JPEG", quality=90)
    return inputs


def median_times(operation, data):
    """Median wall and CPU seconds over RUNS calls."""
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        operation(data)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def child_peak_rss(operation, path):
    """Peak RSS in bytes of a fresh interpreter running one operation ("baseline" runs none)."""
    command = [sys.executable, __file__, "--child", operation, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return json.loads(result.stdout)["max_rss"]


def median_peak_rss(operation, path):
    return statistics.median(child_peak_rss(operation, path) for _ in range(RUNS))


def peak_rss():
    """This process's peak resident set size in bytes.

    On Linux ru_maxrss survives exec: a child spawned by this (large) parent would
    report the parent's peak. VmHWM belongs to the new address space, so use it.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_child(operation, path):
    data = Path(path).read_bytes()
    if operation != "baseline":
        OPERATIONS[operation](data)
    print(json.dumps({"max_rss": peak_rss()}))


def measure(name, data, workdir):
    path = Path(workdir) / "input.bin"
    path.write_bytes(data)
    times = {op: median_times(fn, data) for op, fn in OPERATIONS.items()}
    baseline = median_peak_rss("baseline", path)
    extra_rss = {op: median_peak_rss(op, path) - baseline for op in ("decode", "normalize")}
    result = normalize_image(data)
    return {
        "name": name,
        "input_mb": len(data) / 1e6,
        "times": times,
        "baseline_mb": baseline / 2**20,
        "extra_mb": {op: value / 2**20 for op, value in extra_rss.items()},
        "output": f"{result.format} {result.width}x{result.height} {result.size / 1e3:.0f} kB",
    }


def print_report(rows):
    print(f"\nWall/CPU: median of {RUNS}. Peak RSS: growth over a baseline process that imported")
    print("chat.images and read the input bytes (median of 3 fresh processes each).\n")
    header = f"{'input':<30} {'operation':<10} {'wall ms':>9} {'cpu ms':>9} {'x header':>9} {'x decode':>9} {'+RSS MB':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        header_wall = row["times"]["header"][0]
        decode_wall = row["times"]["decode"][0]
        for op, (wall, cpu) in row["times"].items():
            extra = row["extra_mb"].get(op)
            extra_text = f"{extra:8.1f}" if extra is not None else f"{'-':>8}"
            print(
                f"{row['name'] if op == 'header' else '':<30} {op:<10} {wall * 1e3:9.2f} {cpu * 1e3:9.2f}"
                f" {wall / header_wall:9.0f} {wall / decode_wall:9.2f} {extra_text}"
            )
        rss_ratio = row["extra_mb"]["normalize"] / row["extra_mb"]["decode"]
        print(
            f"{'':<30} input {row['input_mb']:.1f} MB -> {row['output']}; baseline process "
            f"{row['baseline_mb']:.0f} MB; normalize adds {rss_ratio:.2f}x the memory of a full decode\n"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", action="store_true", help="also benchmark a PNG at the pixel limit")
    parser.add_argument("--child", nargs=2, metavar=("OPERATION", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    print("Generating inputs...", flush=True)
    inputs = build_inputs(args.limit)
    with tempfile.TemporaryDirectory() as workdir:
        rows = [measure(name, data, workdir) for name, data in inputs.items()]
    print_report(rows)


if __name__ == "__main__":
    main()
