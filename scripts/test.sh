#!/usr/bin/env bash
# The whole test suite: set up, then lint (ruff), type-check (mypy --strict), check the import
# layers (import-linter's contracts in pyproject.toml) and run pytest
# (slow end-to-end tests included) on two workers (pytest-xdist; each test file on one worker,
# so a module's fixtures are built once; files handed out in collection order, where the
# minutes-long ones come first: see tests/conftest.py; JARVIS_TEST_WORKERS=0 runs in this
# process). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
echo "[test] ruff" >&2
.venv/bin/ruff check --no-cache src tests benchmarks
echo "[test] mypy" >&2
.venv/bin/mypy
echo "[test] import layers (lint-imports)" >&2
.venv/bin/lint-imports --no-cache
echo "[test] pytest" >&2
exec .venv/bin/pytest -n "${JARVIS_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
