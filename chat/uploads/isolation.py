"""Decode uploads in a child process with capped memory, a bounded number at once per web process.

The header checks (``images.open_checked``) refuse what is known to be costly; this is the guarantee for
the rest: whatever a file makes the decoder do, only the child can run out of memory (``RLIMIT_AS``), and the user
is told the image is too large or complex to process. Children come from a ``forkserver`` (never ``fork``: the web
process has threads and an event loop), which has Pillow and this module imported already, so a child starts in
milliseconds and leaves nothing behind: one child per upload, gone when it answers.
"""

import logging
import multiprocessing
import resource
import time
from dataclasses import dataclass

from chat.uploads.images import Limits, NormalizedImage, normalize_image, open_checked
from chat.uploads.rejections import TOO_COMPLEX, ImageRejected

log = logging.getLogger(__name__)

DECODE_SECONDS = 30  # settings.CHAT_IMAGE_DECODE_SECONDS overrides
_context = multiprocessing.get_context("forkserver")
# "__main__" first: each child would otherwise run the main script again (multiprocessing's "safe importing of
# main module"); imported once in the server, children inherit it.
_context.set_forkserver_preload(["__main__", "chat.uploads.isolation"])


@dataclass(frozen=True)
class Outcome:
    """What a decoding child answered: an image or a message, and how much its resident memory grew."""

    image: NormalizedImage | None
    message: str | None
    peak_growth_bytes: int


def normalize_isolated(data: bytes, limits: Limits | None = None, seconds: float = DECODE_SECONDS) -> NormalizedImage:
    """``images.normalize_image`` run in a child process; raises ImageRejected.

    Blocking: call it from a worker thread. The header is checked here first, so that what can be refused from
    the header costs no child.
    """
    limits = limits or Limits.current()
    open_checked(data, limits)
    outcome = decode_in_child(data, limits, seconds)
    if outcome.image is None:
        raise ImageRejected(outcome.message)
    return outcome.image


def decode_in_child(data: bytes, limits: Limits, seconds: float) -> Outcome:
    """Run ``normalize_image`` in a fresh child whose address space may grow by ``limits.decode_memory_mb``.

    A child that dies (out of memory, a crash in a codec) or takes longer than ``seconds`` is killed and reported
    as TOO_COMPLEX; it never raises for what the child did.
    """
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(target=_child_main, args=(sender, data, limits), daemon=True)
    child.start()
    sender.close()  # so that recv() sees EOF when the child dies without answering
    try:
        return _receive(receiver, child, seconds)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


def _receive(receiver, child, seconds: float) -> Outcome:
    deadline = time.monotonic() + seconds
    try:
        if receiver.poll(max(0.0, deadline - time.monotonic())):
            return receiver.recv()
        log.warning("image decode timed out after %ss; child %s killed", seconds, child.pid)
    except EOFError:
        child.join(1)
        log.warning("image decoding child %s died without answering (exit code %s)", child.pid, child.exitcode)
    return Outcome(None, TOO_COMPLEX, 0)


def _child_main(sender, data: bytes, limits: Limits) -> None:
    """In the child: cap the address space, normalise, send one Outcome."""
    start_rss = _status_bytes("VmRSS")
    ceiling = _status_bytes("VmSize") + limits.decode_memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    try:
        image, message = normalize_image(data, limits), None
    except ImageRejected as exc:
        image, message = None, exc.user_message
    except MemoryError:  # outside Pillow's decoders (resampling, encoding): the same answer
        image, message = None, TOO_COMPLEX
    sender.send(Outcome(image, message, _status_bytes("VmHWM") - start_rss))
    sender.close()


def _status_bytes(field: str) -> int:
    """A size from /proc/self/status (Linux; Heroku's dynos are), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")
