"""Read a version's reference scores (data/<version>/reference_scores.json) and derive the accuracy thresholds
the graders apply.

Thresholds are never numbers in grader code: required accuracy = the reference's mean minus the
rubric's margin, and partial credit reaches zero ``zero_below`` further down.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .rubric import Rubric


class ReferenceScoresError(ValueError):
    """Missing or inconsistent reference scores: the instructor must (re)generate them."""


@dataclass(frozen=True)
class Thresholds:
    trained_model_required: float
    trained_model_zero: float
    retrain_required: float
    retrain_zero: float
    retrain_suspicious: float
    suspicious_accuracy: float
    max_parameters: int

    def as_dict(self) -> dict:
        return asdict(self)


def load_reference(path: Path) -> dict:
    fix = "Generate them with `python -m autograder reference all --version <version>` (about 15 minutes on 2 cores)."
    if not Path(path).is_file():
        raise ReferenceScoresError(f"No reference scores at {path}. {fix}")
    try:
        data = json.loads(Path(path).read_text())
        mean = float(data["test_accuracy"]["mean"])
        retrain_mean = float(data["retrain"]["accuracy"]["mean"])
        data["retrain"]["budget"]
    except (ValueError, KeyError, TypeError) as error:
        raise ReferenceScoresError(f"{path} is incomplete ({type(error).__name__}: {error}). {fix}") from None
    if not (0.0 < mean <= 1.0 and 0.0 < retrain_mean <= 1.0):
        raise ReferenceScoresError(f"{path} holds impossible accuracies. {fix}")
    return data


def thresholds(rubric: Rubric, reference: dict) -> Thresholds:
    """Combine the rubric's margins with the reference's scores.

    Raises:
        ReferenceScoresError: the reference's retrain budget differs from the rubric's.
    """
    if reference["retrain"]["budget"] != rubric.retrain.as_dict():
        raise ReferenceScoresError(
            f"The rubric's retrain budget {rubric.retrain.as_dict()} differs from the one the reference scores "
            f"were computed with {reference['retrain']['budget']}; run `python -m autograder reference retrain`.")
    margins = rubric.thresholds
    trained_required = reference["test_accuracy"]["mean"] - margins["trained_model_margin"]
    retrain_required = reference["retrain"]["accuracy"]["mean"] - margins["retrain_margin"]
    return Thresholds(
        trained_model_required=round(trained_required, 4),
        trained_model_zero=round(trained_required - margins["trained_model_zero_below"], 4),
        retrain_required=round(retrain_required, 4),
        retrain_zero=round(retrain_required - margins["retrain_zero_below"], 4),
        retrain_suspicious=round(reference["retrain"]["accuracy"]["max"] + margins["retrain_suspicious_margin"], 4),
        suspicious_accuracy=float(margins["suspicious_accuracy"]),
        max_parameters=int(margins["max_parameters"]))
