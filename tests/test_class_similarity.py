"""Class-level copy flags from plain files: stub text is not similarity, distinct work is not flagged, equal
weights are; the model identity is read from a probe's .npy records without pickle."""

from __future__ import annotations

import json

import numpy as np

import factory
from autograder import assignment as assignments
from autograder.class_similarity import compare_class, model_identity
from autograder.report import SubmissionReport

V1 = assignments.load("v1")
STUB = (V1.release_dir / V1.module).read_text()


def _report(key, **fields):
    return SubmissionReport(name=key, total=50, max_total=100, tests=[], key=key, version="v1", **fields)


def _write(submissions, key, text):
    folder = submissions / key / "submission"
    folder.mkdir(parents=True)
    (folder / V1.module).write_text(text)


def test_the_stub_filled_in_differently_is_not_flagged_and_a_copy_is(tmp_path):
    solution = factory.student_source()
    _write(tmp_path, "a", solution)
    _write(tmp_path, "b", solution)          # a copy
    _write(tmp_path, "c", STUB)              # the stub itself: nothing beyond it to share
    _write(tmp_path, "d", STUB)
    reports = [_report(k) for k in "abcd"]
    result = compare_class(tmp_path, reports, modules={"v1": V1.module}, stubs={"v1": STUB})
    assert result.similar == {"a": ["b"], "b": ["a"]}


def test_equal_weights_are_flagged_by_fingerprint_and_refused_models_by_their_bytes(tmp_path):
    reports = [_report("a", model_fingerprint="sha256:1"), _report("b", model_fingerprint="sha256:1"),
               _report("c", model_fingerprint="sha256:2"), _report("d", model_sha256="ff"), _report("e", model_sha256="ff"),
               SubmissionReport(name="f", total=0, max_total=100, tests=[], key="f", version="v1", status="not_graded",
                                model_fingerprint="sha256:1")]
    result = compare_class(tmp_path, reports, modules={"v1": V1.module}, stubs={"v1": STUB})
    assert {(p["first"], p["second"]) for p in result.flagged} == {("a", "b"), ("d", "e")}


def test_the_model_identity_reads_the_recorded_weights_and_ignores_what_is_not_plain(tmp_path):
    probe = tmp_path / "artifacts" / "trained_model"
    probe.mkdir(parents=True)
    record = {"completed": True, "record": {"model": {"layers": [{"weights": ["w0_0", "w0_1"]}]}}, "errors": []}
    (probe / "result.json").write_text(json.dumps(record))
    np.save(probe / "w0_0.npy", np.ones((3, 2), np.float32))
    np.save(probe / "w0_1.npy", np.zeros(2, np.float32))
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK not really")
    first = model_identity(tmp_path / "artifacts", model, ("trained_model",))
    assert first["model_fingerprint"].startswith("sha256:") and len(first["model_sha256"]) == 64
    np.save(probe / "w0_1.npy", np.array([object()], dtype=object), allow_pickle=True)
    second = model_identity(tmp_path / "artifacts", model, ("trained_model",))
    assert second["model_fingerprint"] == "" and second["model_sha256"] == first["model_sha256"]
    assert model_identity(tmp_path / "nothing", None, ("trained_model",)) == {"model_fingerprint": "", "model_sha256": ""}
