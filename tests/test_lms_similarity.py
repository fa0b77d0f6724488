"""Similarity flags for source code (autograder/lms/similarity.py): copies flagged, independent work not."""

from __future__ import annotations

import pytest

from autograder.lms.similarity import compare_sources, render_report
from lms_fixtures import sources


@pytest.fixture(scope="module")
def classroom():
    return {"canvas:1": sources.solution_a(), "canvas:2": sources.solution_b(),
            "canvas:3": sources.renamed_copy_of_a(), "canvas:4": sources.stub()}


@pytest.fixture(scope="module")
def result(classroom):
    return compare_sources(classroom, boilerplate=[sources.stub()], report_threshold=0.0)


def test_a_renamed_variables_copy_is_flagged(result):
    pair = next(p for p in result.pairs if (p.first, p.second) == ("canvas:1", "canvas:3"))
    assert pair.flagged and pair.similarity >= 0.95


def test_two_independent_correct_solutions_are_not_flagged(result):
    pair = next(p for p in result.pairs if (p.first, p.second) == ("canvas:1", "canvas:2"))
    assert not pair.flagged and pair.similarity < 0.5
    assert [(p.first, p.second) for p in result.flagged] == [("canvas:1", "canvas:3")]


def test_the_released_stub_is_boilerplate_not_similarity(result):
    assert all(p.similarity == 0 for p in result.pairs if "canvas:4" in (p.first, p.second))
    with_stub = compare_sources({"a": sources.stub() + "\nX = 1\n", "b": sources.stub() + "\nY = 2\n"},
                                boilerplate=[sources.stub()])
    assert with_stub.flagged == []


def test_scores_are_the_same_on_every_run(classroom, result):
    again = compare_sources(dict(reversed(list(classroom.items()))), boilerplate=[sources.stub()],
                            report_threshold=0.0)
    assert again.pairs == result.pairs


def test_thresholds_are_parameters():
    text = sources.solution_a()
    assert compare_sources({"a": text, "b": text}).flagged
    assert not compare_sources({"a": text, "b": text}, min_overlap=10**6).flagged
    assert compare_sources({"a": text, "b": sources.solution_b()}, report_threshold=0.9,
                           flag_threshold=0.95).pairs == []
    with pytest.raises(ValueError, match="report_threshold"):
        compare_sources({}, flag_threshold=0.2, report_threshold=0.5)


def test_report_escapes_everything_students_control():
    evil = "<script>alert(1)</script>"
    code = sources.solution_a().replace('"softmax"', f'"softmax"  # {evil} </td></tr><img src=x onerror=alert(2)>')
    found = compare_sources({evil: code, "b": sources.solution_a(), "too_long": "x" * 300_000})
    page = render_report(found, {evil: code, "b": sources.solution_a()}, labels={"b": "Ünïcode <b>Name</b>"},
                         boilerplate=[sources.stub()])
    assert "<script" not in page and "<img" not in page and "<b>Name" not in page
    assert "&lt;script&gt;" in page and "Ünïcode &lt;b&gt;Name&lt;/b&gt;" in page
    assert "Content-Security-Policy" in page and "too_long" in page
    assert page.count("<table class=\"diff\">") == len(found.flagged) == 1


def test_report_shows_invisible_reordering_characters():
    trojan = sources.solution_a().replace('"softmax"', '"softmax"  # \u202e}{ ⁦')
    found = compare_sources({"a": trojan, "b": sources.solution_a()})
    page = render_report(found, {"a": trojan, "b": sources.solution_a()}, labels={"a": "Eve\u202eevil"})
    assert "\u202e" not in page and "&lt;U+202E&gt;" in page and "&lt;U+2066&gt;" in page


def test_report_folds_the_stub_and_keeps_what_the_pair_shares(classroom, result):
    page = render_report(result, classroom, boilerplate=[sources.stub()])
    assert "identical lines of the released stub" in page
    assert "keras.utils.to_categorical(labels, NUM_CLASSES)" in page  # solution_a's own line, shared
