"""Settings resolve defaults < pyproject < environment < command line, and name the source of a bad value."""

import pytest

from autograder.settings import SettingsError, load_settings


def test_precedence(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.autograder]\njobs = 3\nprobe_timeout_s = 10\n")
    settings = load_settings({"jobs": 5}, pyproject=pyproject, environ={"AUTOGRADER_PROBE_TIMEOUT_S": "12.5"})
    assert settings.jobs == 5 and settings.probe_timeout_s == 12.5
    assert load_settings(pyproject=pyproject, environ={}).jobs == 3
    assert load_settings(pyproject=tmp_path / "missing.toml", environ={}).jobs == 0


def test_bad_values_name_their_source(tmp_path):
    with pytest.raises(SettingsError, match="AUTOGRADER_JOBS"):
        load_settings(environ={"AUTOGRADER_JOBS": "many"}, pyproject=tmp_path / "none.toml")
    with pytest.raises(SettingsError, match="--jobs"):
        load_settings({"jobs": -1}, environ={}, pyproject=tmp_path / "none.toml")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.autograder]\nspeed = 'fast'\n")
    with pytest.raises(SettingsError, match="Unknown setting 'speed'"):
        load_settings(pyproject=pyproject, environ={})
