"""One typed settings object for grading, resolved in one place: defaults < pyproject < environment < CLI."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
ENV_PREFIX = "AUTOGRADER_"


class SettingsError(ValueError):
    """An invalid setting; the message names where the value came from."""


@dataclass(frozen=True)
class Settings:
    jobs: int = field(default=0, metadata={"help": "submissions graded in parallel (0: one per CPU core)"})
    probe_timeout_s: float = field(default=60.0, metadata={"help": "wall-clock limit per graded function"})
    retrain_timeout_s: float = field(default=180.0, metadata={"help": "wall-clock limit for the budgeted retrain"})
    startup_timeout_s: float = field(default=90.0, metadata={"help": "limit for starting Python and Keras in the sandbox"})
    memory_mb: int = field(default=3072, metadata={"help": "memory per submission (cgroup when available)"})
    address_space_mb: int = field(default=8192, metadata={"help": "RLIMIT_AS per sandboxed process (TensorFlow needs >= 4096)"})
    cpu_seconds: int = field(default=600, metadata={"help": "RLIMIT_CPU per sandboxed process"})
    max_processes: int = field(default=256, metadata={"help": "RLIMIT_NPROC: processes and threads per sandbox uid"})
    max_file_mb: int = field(default=128, metadata={"help": "RLIMIT_FSIZE: largest file a submission may write"})
    scratch_mb: int = field(default=512, metadata={"help": "size of the sandbox's private /tmp"})
    artifacts_mb: int = field(default=384, metadata={
        "help": "most a submission may send back in all (files and output, across relaunches and helper slots)"})
    threads_per_job: int = field(default=0, metadata={
        "help": "TensorFlow/BLAS threads per submission (0: the cores divided among the jobs)"})
    first_uid: int = field(default=61000, metadata={"help": "first host uid of the per-slot sandbox identities (root only)"})
    warm_workers: bool = field(default=True, metadata={
        "help": "import Keras once per slot and fork an isolated child per submission"})
    process_per_function: bool = field(default=False, metadata={
        "help": "run every graded function in a process of its own (by default all but load_model share one, "
                "cleaned between them; about 1.2 CPU-seconds more per submission)"})
    backend: str = field(default="tensorflow", metadata={"help": "Keras backend inside the sandbox"})
    isolation: str = field(default="auto", metadata={
        "help": "how student code is isolated: auto (the strongest tier this machine allows), namespaces "
                "(bubblewrap) or container (a separate uid, for Docker-like hosts that refuse namespaces); "
                "SECURITY.md says what each guarantees"})
    minimum_isolation: str = field(default="container", metadata={
        "help": "the weakest tier grading may use (namespaces, container, none); a machine that offers less "
                "refuses to grade instead of posting grades"})
    unsafe_no_sandbox: bool = field(default=False, metadata={
        "help": "DEVELOPMENT ONLY: run student code without bwrap when isolation is unavailable"})

    def resolved_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else max(1, os.cpu_count() or 1)

    def resolved_threads(self) -> int:
        """Threads per job: parallel jobs must not fight over the cores, a lone job may use them all."""
        if self.threads_per_job > 0:
            return self.threads_per_job
        return max(1, (os.cpu_count() or 1) // self.resolved_jobs())


def load_settings(cli: dict | None = None, *, pyproject: Path | None = None, environ=None) -> Settings:
    """Resolve settings: dataclass defaults, then ``[tool.autograder]`` in pyproject.toml, then
    ``AUTOGRADER_<FIELD>`` environment variables, then the command line (``cli``, None values ignored).

    Raises:
        SettingsError: an unknown key or a value of the wrong type, naming its source.
    """
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict = {}
    pyproject = pyproject or REPO_DIR / "pyproject.toml"
    if pyproject.is_file():
        table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("autograder", {})
        for key, value in table.items():
            values[key.replace("-", "_")] = _convert(fields, key.replace("-", "_"), value, f"{pyproject} [tool.autograder]")
    for name in fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _convert(fields, name, raw, f"environment variable {ENV_PREFIX}{name.upper()}")
    for key, value in (cli or {}).items():
        if value is not None:
            values[key] = _convert(fields, key, value, f"command-line option --{key.replace('_', '-')}")
    return Settings(**values)


def _convert(fields, name, value, source):
    if name not in fields:
        raise SettingsError(f"Unknown setting {name!r} in {source}; known: {', '.join(sorted(fields))}.")
    kind = type(fields[name].default)
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes")
            return bool(value)
        converted = kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"Setting {name} from {source} must be a {kind.__name__}; got {value!r}.") from None
    if kind in (int, float) and converted < 0:
        raise SettingsError(f"Setting {name} from {source} must not be negative; got {value!r}.")
    if name in CHOICES and converted not in CHOICES[name]:
        raise SettingsError(f"Setting {name} from {source} must be one of {', '.join(CHOICES[name])}; got {value!r}.")
    return converted


# Settings that take one of a few words (the isolation tiers: sandbox/tiers.py).
CHOICES = {"isolation": ("auto", "namespaces", "container"), "minimum_isolation": ("namespaces", "container", "none")}
