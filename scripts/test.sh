#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine: a virtual environment in .venv with
# the project and its dev extras, the services the tests need, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k campaign -x).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

bash scripts/services.sh

exec .venv/bin/python -m pytest "$@"
