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

# Two processes (pytest-xdist): most of the suite waits on real workers, browsers and servers,
# so two share the 2 cores well; each has its own PostgreSQL database and private Redis.
# MARKETING_TEST_PROCESSES=0 runs everything in this one process.
exec .venv/bin/python -m pytest -n "${MARKETING_TEST_PROCESSES:-2}" "$@"
