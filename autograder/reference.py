"""Reference scores from a version's solution: the numbers every accuracy threshold is derived from.

* ``train``: the lecture's model (the manifest's ``[reference]``: for v1 784-500-500-10 sigmoid, adam,
  batch 100, 20 epochs) on the full training set, once per seed, each in its own subprocess
  (`training.py`); test accuracy, loss and epoch times.
* ``retrain``: the budgeted retrain of the solution's pipeline, through the real sandbox and the
  same probe the graders score, over several seeds and secret transformations.
* ``grade``: grade the solution through the full path; anything but 100/100 is an error.

Everything lands in ``data/<version>/reference_scores.json`` with the library versions and the machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assignment import Assignment
from .numpy_model import accuracy, from_export
from .rubric import load_rubric
from .settings import REPO_DIR, Settings


class ReferenceRunError(RuntimeError):
    """Training or grading the solution failed; the solution or the environment needs fixing."""


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "system": platform.platform()}


def _stats(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 5), "std": round(statistics.pstdev(values), 5),
            "min": round(min(values), 5), "max": round(max(values), 5), "n": len(values)}


def train_reference(assignment: Assignment, *, seeds: int, epochs: int | None = None) -> dict:
    settings = assignment.reference_model
    epochs = epochs or int(settings["epochs"])
    runs = []
    for seed in range(1, seeds + 1):
        print(f"training the {assignment.version} reference model, seed {seed} of {seeds} ({epochs} epochs)...",
              file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, "-m", "autograder.training", "--version", assignment.version,
                                 "--seed", str(seed), "--epochs", str(epochs)], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO_DIR)})
        if result.returncode != 0:
            raise ReferenceRunError(f"Training the solution failed (seed {seed}):\n{result.stderr[-3000:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    versions = runs[0].pop("versions")
    for run in runs[1:]:
        run.pop("versions", None)
    return {"reference_model": {**{key: settings[key] for key in ("hidden_units", "activation", "optimizer",
                                                                   "batch_size")}, "epochs": epochs},
            "runs": runs,
            "test_accuracy": _stats([r["test_accuracy"] for r in runs]),
            "test_loss": _stats([r["test_loss"] for r in runs]),
            "seconds_per_epoch": round(statistics.fmean(s for r in runs for s in r["epoch_seconds"]), 2),
            "versions": versions}


def retrain_reference(assignment: Assignment, *, settings: Settings, runs: int) -> dict:
    """Run the graders' retrain probe on the solution ``runs`` times, in the sandbox, and score each."""
    from .artifacts import Artifacts
    from .sandbox.runner import run_probes
    rubric = load_rubric(assignment)
    dataset = assignment.load_dataset()
    builder = assignment.grading_module("inputs")
    from .plan import probes
    spec = next(spec for spec in probes(assignment, settings, rubric, has_model_file=False) if spec.name == "retrain")
    accuracies, seconds = [], []
    with tempfile.TemporaryDirectory(prefix="reference-") as temporary:
        root = Path(temporary)
        os.chmod(root, 0o711)
        staged = root / "solution"
        staged.mkdir()
        shutil.copy(assignment.solution_module, staged / assignment.module)
        os.chmod(staged, 0o755)
        os.chmod(staged / assignment.module, 0o644)
        for index in range(runs):
            print(f"retraining the solution on the budget, run {index + 1} of {runs}...", file=sys.stderr, flush=True)
            inputs = builder.build(root / f"inputs-{index}", dataset=dataset, retrain=rubric.retrain,
                                   permutation_seed=1000 + index)
            run_spec = dataclasses.replace(spec, params={**spec.params, "seed": rubric.retrain.seed + index}, group=None)
            artifacts_dir = root / f"artifacts-{index}"
            run_probes([run_spec], submission_dir=staged, inputs_dir=inputs.public, artifacts_dir=artifacts_dir,
                       work_dir=root / f"work-{index}", settings=settings, slot=0, version=assignment.version,
                       module=assignment.module, model=assignment.model)
            artifacts = Artifacts(artifacts_dir, module=assignment.module)
            record = artifacts.record("retrain")
            model = from_export(record["model"], lambda key: artifacts.array("retrain", key), max_parameters=10**8)
            images, labels = inputs.labelled("retrain_eval")
            accuracies.append(accuracy(model.predict(images), labels))
            seconds.append(record.get("train_seconds"))
    return {"budget": rubric.retrain.as_dict(), "runs": [{"seed": rubric.retrain.seed + i, "accuracy": round(a, 5),
                                                          "train_seconds": s} for i, (a, s) in enumerate(zip(accuracies, seconds))],
            "accuracy": _stats(accuracies)}


def grade_solution(assignment: Assignment, *, settings: Settings) -> dict:
    """Grade the solution, with the example model trained by the lecture's settings, through the full path."""
    from .grade import grade
    if not assignment.example_model.exists():
        raise ReferenceRunError(f"{assignment.example_model} is missing; train it with `python tests/submissions/"
                                f"factory.py --version {assignment.version} --examples --train-model`.")
    with tempfile.TemporaryDirectory(prefix="reference-grade-") as temporary:
        submission = Path(temporary) / "solution"
        submission.mkdir()
        shutil.copy(assignment.solution_module, submission / assignment.module)
        shutil.copy(assignment.example_model, submission / assignment.model)
        started = time.perf_counter()
        report = grade([submission], out_dir=Path(temporary) / "out", settings=settings, progress=False,
                       version=assignment.version, command="reference grade")[0].report
    failed = [t for t in report.tests if t["status"] != "passed"]
    if failed or not report.graded:
        details = "\n".join(f"  {t['name']}: {t['output']}" for t in failed) or report.failure
        raise ReferenceRunError(f"The solution scored {report.total:g}/{report.max_total:g}, not full marks:\n{details}")
    return {"total": report.total, "max_total": report.max_total, "seconds": round(time.perf_counter() - started, 1)}


def run(action: str, *, assignment: Assignment, settings: Settings, seeds: int | None = None,
        epochs: int | None = None, output: Path | None = None, retrain_runs: int = 5) -> dict:
    """Compute and store ``assignment``'s reference scores; ``action`` is train, retrain, grade or all."""
    output = Path(output or assignment.reference_path)
    seeds = seeds or int(assignment.reference_model.get("seeds", 5))
    data = json.loads(output.read_text()) if output.exists() else {}
    data.pop("generated_by", None)
    data.pop("generated_at", None)
    history = data.setdefault("generated", {})

    def stamp(part: str) -> None:
        history[part] = {"command": f"python -m autograder reference {part} --version {assignment.version}",
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()}

    if action in ("train", "all"):
        data.update(train_reference(assignment, seeds=seeds, epochs=epochs))
        stamp("train")
    if action in ("retrain", "all"):
        data["retrain"] = retrain_reference(assignment, settings=settings, runs=retrain_runs)
        stamp("retrain")
    _write(output, data)
    if action in ("grade", "all"):
        result = grade_solution(assignment, settings=settings)
        print(f"the solution scores {result['total']:g}/{result['max_total']:g} ({result['seconds']} s)", file=sys.stderr)
        data["solution_grade"] = result
        stamp("grade")
        _write(output, data)
    return data


def _write(output: Path, data: dict) -> None:
    data.pop("machine", None)  # per part, under "generated"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {output}", file=sys.stderr)
