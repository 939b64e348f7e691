#!/bin/sh
# Run the test suite. Extra arguments go to pytest (for example: scripts/test.sh tests/test_chat_socket.py -x).
set -e
cd "$(dirname "$0")/.."
PYTHON=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
exec .venv/bin/pytest "$@"
