"""Late days and penalties (autograder/lms/late.py): a pure function of times, markers and the policy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autograder.lms.late import (LateConfigurationError, LatePolicy, apply_penalty, extension_for, late_penalty,
                                 read_extensions)

DUE = datetime(2024, 10, 1, 23, 59, tzinfo=timezone.utc)
POLICY = LatePolicy(percent_per_day=10, max_percent=30, grace_minutes=15)


@pytest.mark.parametrize("after, days, points", [
    (timedelta(0), 0, 0.0), (timedelta(minutes=15), 0, 0.0), (timedelta(minutes=16), 1, 10.0),
    (timedelta(hours=24), 1, 10.0), (timedelta(hours=24, minutes=1), 2, 20.0), (timedelta(days=9), 9, 30.0),
    (-timedelta(days=1), 0, 0.0)])
def test_days_are_started_24_hour_periods_after_the_grace_and_capped(after, days, points):
    result = late_penalty(DUE + after, due=DUE, policy=POLICY, max_score=100)
    assert (result.late_days, result.penalty_points, result.needs_review) == (days, points, False)


def test_an_extension_replaces_the_due_date_and_must_be_later():
    extension = DUE + timedelta(days=3)
    assert late_penalty(DUE + timedelta(days=2), due=DUE, extension=extension, policy=POLICY,
                        max_score=100).late_days == 0
    late = late_penalty(extension + timedelta(hours=1), due=DUE, extension=extension, policy=POLICY, max_score=100)
    assert late.late_days == 1 and "extended due date" in late.reason
    with pytest.raises(LateConfigurationError, match="earlier than the due date"):
        late_penalty(DUE, due=DUE, extension=DUE - timedelta(days=1), policy=POLICY, max_score=100)


def test_only_a_late_marker_charges_the_minimum_and_asks_for_review():
    result = late_penalty(None, due=DUE, policy=POLICY, max_score=100, late_marker=True)
    assert (result.late_days, result.penalty_points, result.needs_review) == (1, 10.0, True)
    assert "gave no time" in result.reason
    none = late_penalty(None, due=DUE, policy=LatePolicy(percent_per_day=10, marker_only_days=None), max_score=100,
                        late_marker=True)
    assert (none.late_days, none.penalty_points, none.needs_review) == (None, None, True)
    covered = late_penalty(None, due=DUE, extension=DUE + timedelta(days=2), policy=POLICY, max_score=100,
                           late_marker=True)
    assert covered.penalty_points is None and covered.needs_review and "extension" in covered.reason
    on_time = late_penalty(None, due=DUE, policy=POLICY, max_score=100, late_marker=False)
    assert (on_time.late_days, on_time.needs_review) == (0, False)
    unknown = late_penalty(None, due=DUE, policy=POLICY, max_score=100)
    assert (unknown.late_days, unknown.penalty_points, unknown.needs_review) == (None, 0.0, True)


def test_penalty_basis_and_the_posted_score():
    by_score = LatePolicy(percent_per_day=50, basis="score")
    result = late_penalty(DUE + timedelta(hours=2), due=DUE, policy=by_score, max_score=100, score=60)
    assert result.penalty_points == 30.0 and apply_penalty(60, result.penalty_points) == 30.0
    no_score = late_penalty(DUE + timedelta(hours=2), due=DUE, policy=by_score, max_score=100)
    assert no_score.penalty_points is None and no_score.needs_review
    assert apply_penalty(5.0, 10.0) == 0.0 and apply_penalty(None, 3.0) is None and apply_penalty(8.0, None) == 8.0


def test_naive_times_and_bad_policies_are_refused():
    with pytest.raises(LateConfigurationError, match="no timezone"):
        late_penalty(datetime(2024, 10, 2), due=DUE, policy=POLICY, max_score=100)
    with pytest.raises(LateConfigurationError, match="basis"):
        LatePolicy(basis="points")
    with pytest.raises(LateConfigurationError, match="max_percent"):
        LatePolicy(max_percent=150)
    with pytest.raises(LateConfigurationError, match="percent_per_day"):
        LatePolicy(percent_per_day=-1)


def test_extensions_csv_is_strict_and_looked_up_by_any_identifier(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text("identifier,new_due_date\ncanvas:13,2024-10-04T23:59:00+02:00\nJane@Uni.edu,2024-10-05T12:00\n",
                    encoding="utf-8")
    with pytest.raises(LateConfigurationError, match="no UTC offset"):
        read_extensions(path)
    extensions = read_extensions(path, timezone="Europe/Berlin")
    assert extension_for(extensions, key="canvas:13") == datetime(2024, 10, 4, 23, 59,
                                                                  tzinfo=timezone(timedelta(hours=2)))
    assert extension_for(extensions, key="canvas:99", email="jane@uni.EDU").hour == 12
    assert extension_for(extensions, key="canvas:98") is None
    path.write_text("student,due\nx,2024-10-04\n", encoding="utf-8")
    with pytest.raises(LateConfigurationError, match="must start with the header 'identifier,new_due_date'"):
        read_extensions(path)
    path.write_text("identifier,new_due_date\na,2024-10-04T00:00Z\nA,2024-10-05T00:00Z\n", encoding="utf-8")
    with pytest.raises(LateConfigurationError, match="line 3.*already has an extension"):
        read_extensions(path)
    path.write_text("identifier,new_due_date\na,next friday\n", encoding="utf-8")
    with pytest.raises(LateConfigurationError, match="line 2: 'next friday' is not an ISO 8601"):
        read_extensions(path)
