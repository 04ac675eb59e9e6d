"""A training run's process: ``python -m jarvis.runtime.job RUN [--settings FILE]``.

The worker starts it with its own settings in a private file; by hand, the settings come from
the environment. It builds what the run needs (the store, the task catalogue, the job's
config) and hands over to :func:`jarvis.training.job.run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jarvis.catalogue import TaskCatalogue
from jarvis.core.errors import JarvisError
from jarvis.runtime.configs import job_config, task_settings_for
from jarvis.runtime.settings import Settings
from jarvis.store import Store
from jarvis.training import job

__all__ = ["main", "run"]


def run(run_id: int, settings: Settings) -> int:
    """Run queued run ``run_id`` with ``settings``; 0 when it succeeded, 1 when it failed."""
    if settings.database_url is None:
        settings.ensure_home()
    store = Store(settings.resolved_database_url)
    try:
        catalogue = TaskCatalogue(store)
        catalogue.load_plugins(settings.task_modules)
        config = job_config(settings, task_settings_for(settings, catalogue))
        return job.run(run_id, store, catalogue, config)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one JARVIS training run (run id).")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--settings", type=Path, help="JSON settings written by the worker.")
    args = parser.parse_args(argv)
    try:
        if args.settings is not None:
            settings = Settings(**json.loads(args.settings.read_text()))
        else:
            settings = Settings()
        return run(args.run_id, settings)
    except JarvisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
