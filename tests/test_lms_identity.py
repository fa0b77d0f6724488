"""Identity keys and filesystem-safe folder names (autograder/lms/identity.py)."""

from __future__ import annotations

import re

import pytest

from autograder.lms.identity import identity_key, safe_folder_name

SAFE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


def test_plain_ascii_names_get_readable_folders_without_a_hash():
    assert safe_folder_name("canvas", "12345", "Doe, Jane") == "doe-jane_canvas-12345"
    assert safe_folder_name("moodle", "731904", "Ann-Marie O'Neil") == "ann-marie-o-neil_moodle-731904"


@pytest.mark.parametrize("name", ["Zoë Ñúñez", "王小明", "Ђорђе", "🙂", "", "../../etc", "CON", "a" * 300,
                                  "\u202eevil\u202c", "x\x00y"])
def test_any_name_gives_a_safe_deterministic_folder(name):
    folder = safe_folder_name("canvas", "12345", name)
    assert SAFE.match(folder) and folder == safe_folder_name("canvas", "12345", name)
    assert "_canvas-12345" in folder


def test_lossy_transliterations_never_collide():
    first = safe_folder_name("canvas", "1", "Zoë")
    second = safe_folder_name("canvas", "1", "Zoe")
    assert first != second and first.startswith("zoe_canvas-1_")
    # Ids that sanitize alike are told apart by the hash of the whole identity.
    assert safe_folder_name("gradescope", "A.B", "X") != safe_folder_name("gradescope", "a-b", "X")


def test_folder_depends_on_the_identity_alone_and_keys_are_checked():
    assert safe_folder_name("moodle", "5", "Ann Lee") != safe_folder_name("canvas", "5", "Ann Lee")
    assert identity_key("gradescope", " A1 ") == "gradescope:A1"
    with pytest.raises(ValueError, match="Unknown LMS"):
        identity_key("blackboard", "1")
    with pytest.raises(ValueError, match="non-empty"):
        identity_key("canvas", " ")
