#!/bin/sh
# Run the app on the embedded defaults: SQLite, in-memory channel layer, the offline demo model.
set -e
cd "$(dirname "$0")/.."
PYTHON=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python manage.py migrate --noinput
echo "Open http://127.0.0.1:${PORT:-8000}/ and sign up (Ctrl+C stops the server)."
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT:-8000}"
