"""``manage.py fake_inference``: serve the Heroku Managed Inference stand-in in the foreground.

For tests that drive another process, benchmarks, and trying the app against a separate "API" process:
point INFERENCE_URL at ``http://HOST:PORT`` and INFERENCE_KEY at ``--key``.
"""

import uvicorn
from django.core.management.base import BaseCommand

from chat.standin.api import FakeInference


class Command(BaseCommand):
    help = "Serve a local stand-in of the Heroku Managed Inference chat completions API."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--key", default="demo", help='Bearer key to accept; "" accepts any key.')
        parser.add_argument("--models", default="", help="Comma-separated provisioned model ids; default: any.")
        parser.add_argument("--delay", type=float, default=None, help="Seconds between streamed deltas.")
        parser.add_argument(
            "--enable-control", action="store_true", help="Serve /__control__/ to script replies and faults."
        )
        parser.add_argument(
            "--enforce-limits", action="store_true", help="Answer 429 past 150 requests or 800k tokens a minute."
        )

    def handle(self, *args, port, host, key, models, delay, enable_control, enforce_limits, **options):
        provisioned = [model.strip() for model in models.split(",") if model.strip()] or None
        app = FakeInference(
            key=key or None, models=provisioned, delay=delay, control=enable_control, enforce_limits=enforce_limits
        )
        self.stdout.write(f"Inference stand-in on http://{host}:{port} (key {key or 'any'!r})")
        uvicorn.run(app, host=host, port=port, lifespan="off", log_level="info", timeout_graceful_shutdown=2)
