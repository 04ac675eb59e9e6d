#!/usr/bin/env bash
# The whole test suite: set up, then lint (ruff), type-check (mypy --strict) and run pytest
# (slow end-to-end tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
echo "[test] ruff" >&2
.venv/bin/ruff check --no-cache src tests benchmarks
echo "[test] mypy" >&2
.venv/bin/mypy
echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
