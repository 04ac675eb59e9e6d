#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs JARVIS into it. Safe to run again: it only installs
# what is missing. Sourced by demo.sh and test.sh.
#   JARVIS_SETUP=dev   (default, test.sh) jarvis-mtllm[dev]: everything, llama.cpp compiled by pip
#                      while the rest installs (~2 min the first time on 2 cores), Debian's
#                      chromium and postgresql (apt, beside pip)
#   JARVIS_SETUP=demo  (demo.sh) jarvis-mtllm[train]: no compiler needed, the demo starts in
#                      about two minutes and its student is served by the torch engine; once
#                      the dev set-up has run, the demo uses it (and llama.cpp) instead
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
profile=${JARVIS_SETUP:-dev}
stamp=.venv/.jarvis-installed
extras=dev
if [ "$profile" = demo ]; then
  if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then
    return 0 2>/dev/null || exit 0  # the dev set-up is current: it has all the demo needs
  fi
  stamp=.venv/.jarvis-installed-demo
  extras=train
fi
# The browser tests drive Debian's Chromium (Playwright's own browser download needs a CDN).
# The store's tests also run on PostgreSQL: a private throwaway server (tests/pg.py) started
# from Debian's server binaries. JARVIS_TEST_POSTGRES_URL (an existing server) or
# JARVIS_TEST_NO_POSTGRES=1 (skip those tests) make it unnecessary.
debian_packages() {
  local want=()
  if [ ! -x /usr/bin/chromium ] && [ -z "${JARVIS_NO_CHROMIUM:-}" ]; then
    want+=(chromium)
  fi
  if [ -z "${JARVIS_NO_POSTGRES:-}${JARVIS_TEST_NO_POSTGRES:-}${JARVIS_TEST_POSTGRES_URL:-}" ] &&
    ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    want+=(postgresql)
  fi
  [ "${#want[@]}" -gt 0 ] || return 0
  echo "[setup] installing Debian's ${want[*]} for the browser and PostgreSQL tests" >&2
  local SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${want[@]}" >/dev/null ||
    echo "[setup] could not install ${want[*]}: the browser / PostgreSQL tests will fail" \
      "(apt-get install ${want[*]}, or set JARVIS_TEST_POSTGRES_URL or JARVIS_TEST_NO_POSTGRES=1)" >&2
}
# `jac run` on Python 3.11, offline: see src/jarvis/integrations/jac_compat.py
jac_compat() {
  if [ ! -f .venv/.jarvis-jac-compat ] ||
    [ src/jarvis/integrations/jac_compat.py -nt .venv/.jarvis-jac-compat ]; then
    .venv/bin/jarvis setup-jac >/dev/null && touch .venv/.jarvis-jac-compat
  fi
}
apt_job=""
if [ "$profile" = dev ]; then
  debian_packages &  # apt works beside pip (both mostly wait on the network and the disk)
  apt_job=$!
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  if [ "$extras" = dev ]; then
    echo "[setup] installing jarvis-mtllm[dev] into .venv (the first time, pip builds llama.cpp: ~3 min)" >&2
  else
    echo "[setup] installing jarvis-mtllm[train] into .venv (~2 min the first time)" >&2
  fi
  # llama.cpp (dev only) is compiled for this machine's CPU (AVX-512 etc.); pip caches the wheel.
  # Only what the engine loads: no multimodal library (LLAVA_BUILD, a fifth of the compile),
  # no `common` library (half of the rest: see scripts/llama-cpp-no-common.cmake).
  # No AMX kernels: on 4th-gen Xeon their matmul crashes llama.cpp on these models (x86 only).
  if [ -z "${CMAKE_ARGS:-}" ]; then
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF"
    CMAKE_ARGS="$CMAKE_ARGS -DCMAKE_PROJECT_INCLUDE=$PWD/scripts/llama-cpp-no-common.cmake"
    if [ "$(uname -m)" = x86_64 ]; then
      CMAKE_ARGS="$CMAKE_ARGS -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
    fi
  fi
  export CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  built=()
  if [ "$extras" = dev ] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    # the compile (most of the set-up) runs while pip installs everything else; then the
    # wheel it built is installed with the rest
    pin=$(.venv/bin/python -c 'import re, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
print(next(r for r in extras["serve"] if r.startswith("llama-cpp-python")))')
    rm -rf .venv/llama-wheel
    .venv/bin/python -m pip wheel --quiet --no-deps -w .venv/llama-wheel "$pin" \
      >.venv/llama-build.log 2>&1 &
    build_job=$!
    .venv/bin/python -m pip install --quiet -e ".[train,jac,postgres]"
    jac_compat  # jaclang compiles its modules (~20 s) while the compile goes on
    if ! wait "$build_job"; then
      tail -n 20 .venv/llama-build.log >&2
      echo "[setup] pip could not build $pin (the log: .venv/llama-build.log)" >&2
      exit 1
    fi
    built=(.venv/llama-wheel/*.whl)
  fi
  .venv/bin/python -m pip install --quiet -e ".[$extras]" "${built[@]}"
  touch "$stamp"
fi
if [ -n "$apt_job" ]; then
  wait "$apt_job" || true
fi
if [ "$profile" = demo ]; then
  return 0 2>/dev/null || exit 0  # the demo needs neither a browser nor a database server
fi
jac_compat
