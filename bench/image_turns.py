"""Peak memory of concurrent turns with images, beside the same turns without, against the stand-in over HTTP.

Usage (from the repository root):

    .venv/bin/python bench/image_turns.py              # 10 turns with 20 images each, and 10 text-only turns
    .venv/bin/python bench/image_turns.py --turns 4 --images 5

Each scenario runs in a fresh child process with a SQLite database of its own and the real turn path
(``lifecycle.start_turn``: records, the prompt, the tool loop, the saver) against the stand-in API started as a
separate process (``manage.py fake_inference``), so only the app's side is measured. The images are what
chat/uploads/images.py stores for the largest uploads: 1568 px noise PNGs with transparency, re-encoded
within its per-image byte budget (it scales them to 928 x 696 to fit; about 2.5 MB each, incompressible); the 10 turns share the 20 stored images, as identical uploads share one blob. Peak memory is the
child's VmHWM after the turns minus its VmRSS just before them (the peak is reset there through
/proc/self/clear_refs, so storing the images does not count).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests import servers  # after the path, as bench/concurrency.py does

PYTHON = servers.PYTHON

CHILD = """
import asyncio, gc, io, json, random, sys, uuid
import django
django.setup()
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from PIL import Image
from chat.live.hub import get_hub
from chat.models import Conversation, Message
from chat.turns import lifecycle
from chat.uploads import attachments
from chat.uploads.images import normalize_image

mode, turns, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def noise(seed):
    # Random RGBA pixels, uploaded at the 1568 px long side: transparency keeps it a PNG, noise keeps the PNG at
    # the per-image byte budget, so the stored image is the largest normalize_image writes (about 2.5 MB).
    size = (1568, 1176)
    out = io.BytesIO()
    Image.frombytes("RGBA", size, random.Random(seed).randbytes(size[0] * size[1] * 4)).save(out, "PNG")
    return normalize_image(out.getvalue())


def setup():
    user = get_user_model().objects.create_user("bench")
    stored = [noise(seed) for seed in range(images)]
    work = []
    for _ in range(turns):
        conversation = Conversation.objects.create(owner=user, tools_enabled=False)
        ids = [str(attachments.save_upload(user, image, "noise.jpg").public_id) for image in stored]
        work.append((str(conversation.public_id), ids))
    print(json.dumps({"work": work, "image_mib": sum(image.size for image in stored) / max(images, 1) / 2**20}))


def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])


async def run():
    work = json.loads(sys.stdin.read())["work"]
    conversations = await database_sync_to_async(
        lambda: {str(c.public_id): c for c in Conversation.objects.select_related("owner")})()
    work = [(conversations[public_id], ids) for public_id, ids in work]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM: the peak from here on
    idle = status("VmRSS")
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(lifecycle.start_turn(conversation, text="Describe these.", client_id=str(uuid.uuid4()),
                                                attachment_ids=ids) for conversation, ids in work))
    for turn in get_hub().running():
        await turn.task
    seconds = asyncio.get_running_loop().time() - started
    outcomes = await database_sync_to_async(lambda: sorted(set(
        Message.objects.filter(role="assistant").values_list("status", flat=True))))()
    print(json.dumps({"peak_mib": (status("VmHWM") - idle) / 1024, "idle_mib": idle / 1024, "seconds": seconds,
                      "outcomes": outcomes}))


# Storing the images runs in a process of its own: what it leaves resident would hide the turns' peak.
setup() if mode == "setup" else asyncio.run(run())
"""


def scenario(turns, images, api_env):
    """Run ``turns`` concurrent turns with ``images`` images each in a fresh child; its figures as a dict."""
    with tempfile.TemporaryDirectory() as folder:
        env = servers.server_env(Path(folder), LOG_LEVEL="WARNING", INFERENCE_URL=api_env["INFERENCE_URL"],
                                 INFERENCE_KEY=api_env["INFERENCE_KEY"])
        stored = _child(env, "setup", turns, images)
        return {**_child(env, "run", turns, images, stdin=json.dumps(stored)), "image_mib": stored["image_mib"]}


def _child(env, mode, turns, images, stdin=""):
    result = subprocess.run([PYTHON, "-c", CHILD, mode, str(turns), str(images)], env=env, cwd=REPO_ROOT,
                            input=stdin, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def rows(turns=10, images=20):
    """The figures of text-only turns and of image turns, measured in this run: a list of (label, figures)."""
    with tempfile.TemporaryDirectory() as folder:
        procs = servers.Processes(Path(folder))
        try:
            api_env = servers.server_env(Path(folder))
            procs.stand_in(api_env, delay=0.02)  # the stand-in's own process: its memory is not counted
            return [(f"{turns} text-only turns", scenario(turns, 0, api_env)),
                    (f"{turns} turns x {images} images", scenario(turns, images, api_env))]
        finally:
            procs.close()


def main(turns=10, images=20):
    """Print one row per scenario: peak memory above the process's idle memory, and how the turns ended."""
    print(f"{'scenario':<28} {'peak above idle':>16} {'idle':>9} {'wall':>7}  outcomes")
    for label, figures in rows(turns, images):
        print(f"{label:<28} {figures['peak_mib']:>12.1f} MiB {figures['idle_mib']:>5.0f} MiB "
              f"{figures['seconds']:>6.1f}s  {','.join(figures['outcomes'])}"
              + (f"  (images of {figures['image_mib']:.2f} MiB)" if figures["image_mib"] else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--images", type=int, default=20)
    arguments = parser.parse_args()
    main(arguments.turns, arguments.images)
