#!/usr/bin/env bash
# The main job: set up, then run `jarvis demo` on embedded defaults (offline). Extra
# arguments go to `jarvis demo` (see `.venv/bin/jarvis demo --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
JARVIS_SETUP=demo source scripts/setup.sh
exec .venv/bin/jarvis demo "$@"
