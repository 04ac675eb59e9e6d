"""One typed settings object: environment variables ``JARVIS_*`` and an optional TOML file.

Every default runs offline on a laptop CPU: the procedural oracle as teacher, SQLite in
``JARVIS_HOME``, the server on loopback. A real LLM teacher is one setting away
(``JARVIS_TEACHER_BASE_URL`` + ``JARVIS_TEACHER_MODEL``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from jarvis.core.errors import ConfigError
from jarvis.core.split import RECURRING_TO_TRAIN
from jarvis.core.task_settings import LORA_TARGET_MODULES, TASK_KEYS, TaskSettings, resolve
from jarvis.core.tasks import Task


def _default_home() -> Path:
    return Path(os.environ.get("JARVIS_HOME", Path.home() / ".jarvis")).expanduser()


class Settings(BaseSettings):
    """Everything JARVIS can be told. Each field is also ``JARVIS_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="JARVIS_", extra="ignore", validate_default=True)

    home: Path = Field(default_factory=_default_home, description="Holds database, models, logs.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: SQLite file <home>/jarvis.db.",
    )
    task_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Python modules whose Task objects are loaded (comma-separated).",
    )

    # Teacher: "auto" uses the OpenAI-compatible endpoint when a base URL is set, otherwise
    # the task's procedural oracle.
    teacher: Literal["auto", "openai", "oracle"] = "auto"
    teacher_base_url: str | None = Field(default=None, description="OpenAI-compatible /v1 URL.")
    teacher_model: str = "gpt-4o-mini"
    teacher_api_key: SecretStr | None = None
    teacher_timeout_s: float = Field(default=60.0, gt=0)
    teacher_max_retries: int = Field(default=3, ge=0, description="HTTP retries on 429/5xx.")
    teacher_response_format: Literal[
        "auto", "json_schema", "json_object", "vllm", "vllm_guided", "ollama", "none"
    ] = Field(
        default="auto",
        description="How the schema is sent: auto (probe the endpoint), json_schema (OpenAI), "
        "json_object (llama-cpp-python), vllm, vllm_guided, ollama, none (prompt only).",
    )
    teacher_instructions: Literal["auto", "system", "user"] = Field(
        default="auto",
        description="Where the instructions go: auto (the system message, moved into the user "
        "turn if the endpoint's chat template drops it), system, user.",
    )
    teacher_attempts: int = Field(
        default=2, ge=1, description="Attempts per call; later ones are told why the last failed."
    )
    teacher_price_in: float = Field(
        default=0.15, ge=0, description="Teacher price, USD per million prompt tokens."
    )
    teacher_price_out: float = Field(
        default=0.60, ge=0, description="Teacher price, USD per million answer tokens."
    )
    teacher_seed: int | None = Field(
        default=None, description="Seed for the procedural oracle (None: varied per call)."
    )

    # Router
    student_retries: int = Field(default=2, ge=0, description="Retries after a bad student answer.")
    max_tokens: int = Field(
        default=1024, gt=0, description="Token budget of one answer (teacher and student)."
    )
    engine: Literal["auto", "llama.cpp", "torch"] = Field(
        default="auto",
        description="Student serving backend: llama.cpp where installed, else torch.",
    )
    constrained: bool = Field(
        default=True, description="Decode typed answers under the call's JSON-schema grammar."
    )
    steering: bool = Field(
        default=True,
        description="With the grammar, apply a task's semantic steering (maps: free cells).",
    )
    batch_size: int = Field(
        default=32,
        ge=1,
        le=256,
        description="llama.cpp student: answers decoded together (continuous batching); "
        "1 decodes one at a time.",
    )
    slot_tokens: int = Field(
        default=2048,
        ge=256,
        description="llama.cpp student: KV cells per answer (prompt and answer).",
    )

    # Per-task defaults (a task may override them, and so may `task_settings`)
    threshold: int = Field(default=200, ge=1, description="Training examples before 1st training.")
    heldout_share: float = Field(default=0.15, ge=0.0, lt=1.0)
    recurring_to_train: int = Field(
        default=RECURRING_TO_TRAIN,
        ge=0,
        description="A held-out input answered this often by the teacher moves to training.",
    )
    retrain_every: int = Field(
        default=200, ge=1, description="Retrain after this many new training examples."
    )
    fallback_limit: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Retrain when the recent fallback rate exceeds it."
    )
    fallback_window: int = Field(default=50, ge=5, description="Recent student calls judged.")
    gate_floor: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Held-out semantic pass rate needed to promote."
    )
    text_gate_floor: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Free-text tasks: held-out mean chrF (0..1) to the teacher's answers "
        "needed to promote.",
    )
    gate_min_examples: int = Field(
        default=20,
        ge=1,
        description="Held-out examples needed to judge a candidate at all: fewer, no promotion.",
    )
    gate_examples: int = Field(
        default=40, ge=1, description="Held-out examples a candidate is judged on (at most)."
    )
    agreement_floor: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Share of held-out answers that must agree with the teacher's to promote.",
    )
    target_agreement: float = Field(
        default=0.98,
        ge=0.0,
        le=1.0,
        description="Agreement the confidence threshold is calibrated for: student answers "
        "below the threshold go to the teacher.",
    )
    cascade: bool = Field(
        default=True,
        description="Send student answers below their version's confidence threshold to the "
        "teacher (escalations); off: every valid student answer is served.",
    )
    shadow_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of student-answered calls also sent to the teacher (drift checks).",
    )
    shadow_window: int = Field(default=50, ge=1, description="Recent shadow checks judged.")
    shadow_min: int = Field(default=20, ge=1, description="Shadow checks needed to judge.")
    shadow_floor: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Retrain below this live agreement."
    )
    shadow_rollback_margin: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Roll back a version whose live agreement is this much below its parent's.",
    )
    canary_share: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="Share of calls a newly promoted version serves first, beside the active "
        "one; it doubles while live checks agree (1: promote at once).",
    )
    canary_shadow_rate: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="While a canary runs: share of both versions' answers also sent to the "
        "teacher, to compare them on live traffic.",
    )
    feedback_min: int = Field(
        default=5,
        ge=1,
        description="Retrain after this much negative feedback on the active version.",
    )
    task_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Per-task overrides, JSON: {"create_next_map": {"threshold": 100}}.',
    )

    # Student
    student: Literal["local", "remote", "none"] = Field(
        default="local", description="local: serve promoted versions in-process; none: never."
    )
    student_base_url: str | None = Field(
        default=None,
        description="student=remote: an OpenAI-compatible server with the adapters (vLLM).",
    )
    student_api_key: SecretStr | None = None
    student_model: str = Field(
        default="{task}",
        description="student=remote: the served model name; {task} and {version} are filled in.",
    )
    base_model: str = Field(
        default="smollm2-135m",
        description="smollm2-135m, gemma3-270m, a Hugging Face model directory or a .gguf file.",
    )

    # Training (LoRA on CPU); see jarvis.training.trainer.TrainConfig for what each means
    train_epochs: float = Field(default=2.0, gt=0)
    train_max_steps: int | None = Field(default=None, ge=1)
    train_learning_rate: float = Field(default=1e-3, gt=0)
    lora_rank: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    train_tokens_per_batch: int = Field(default=2048, ge=64)
    train_max_length: int = Field(default=1536, ge=32)
    train_replay_rounds: int = Field(
        default=8, ge=0, description="Rounds replaying the examples not learned after the epochs."
    )
    train_learned_at: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="An example is learned when greedy writes it, each token at least this sure.",
    )
    train_time_budget_s: float | None = Field(
        default=600.0,
        gt=0,
        description="No replay round starts after this many seconds of training (the "
        "epochs always run in full).",
    )
    lora_target_modules: tuple[str, ...] = Field(
        default=LORA_TARGET_MODULES, min_length=1, description="The layers LoRA trains."
    )
    train_threads: int | None = Field(default=None, ge=1)
    worker_poll_s: float = Field(default=2.0, gt=0)
    # -- server ------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(default=8765, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token for admin routes; required when exposed."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers to besides localhost, 127.0.0.1 and [::1] "
        "(comma-separated; a loopback server refuses any other Host: DNS rebinding).",
    )
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body.")
    max_pending: int = Field(
        default=32, gt=0, description="Model requests queued at once; more are answered 503."
    )
    # -- running .jac programs from the dashboard (admin token required) ---------------------
    jac_run_timeout_s: float = Field(
        default=300.0, gt=0, description="Wall-clock limit of one dashboard `jac run`."
    )
    jac_max_upload_bytes: int = Field(
        default=256 * 1024, gt=0, description="Largest .jac program the dashboard accepts."
    )
    jac_max_runs: int = Field(
        default=2, ge=1, description="Dashboard `jac run` processes at once; more get 429."
    )
    jac_examples_dir: Path | None = Field(
        default=None,
        description="Example .jac programs the dashboard offers; default: the repo's examples/.",
    )

    @field_validator("task_modules", "allowed_hosts", mode="before")
    @classmethod
    def _split_modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))

    def for_task(self, name: str, declared: Task[Any] | None = None) -> TaskSettings:
        """The settings of one task: ``task_settings`` first, then what the task declared
        (``declared``: its threshold, held-out share, training defaults), then the default."""
        defaults = {key: getattr(self, key) for key in TASK_KEYS}
        return resolve(defaults, declared, self.task_settings.get(name, {}))

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'jarvis.db'}"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads ``JARVIS_CONFIG`` or ``<home>/config.toml`` (a ``[jarvis]`` table or top level)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = os.environ.get("JARVIS_CONFIG")
        path = Path(explicit) if explicit else _default_home() / "config.toml"
        if not path.is_file():
            if explicit:
                raise ConfigError(f"JARVIS_CONFIG points to {path}, which is not a file")
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        table = data.get("jarvis", data)
        return dict(table) if isinstance(table, dict) else {}
