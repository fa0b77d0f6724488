"""The ``autograder.lms`` package (autograder/lms/__init__.py): its public API, and that it stays light."""

from __future__ import annotations

import subprocess
import sys

import autograder.lms as lms


def test_every_public_name_is_importable_from_the_package():
    assert all(hasattr(lms, name) for name in lms.__all__)
    assert set(lms.LAYOUTS) == {"canvas", "moodle", "moodle-flat", "gradescope"}
    assert set(lms.ROSTER_FORMATS) == {"canvas-gradebook", "moodle-worksheet", "moodle-participants",
                                       "gradescope-roster"}
    assert set(lms.EXPORTS) == {"canvas-gradebook", "moodle-worksheet", "gradescope-scores"}


def test_importing_the_package_loads_no_keras_tensorflow_or_pickle_readers():
    code = ("import sys, autograder.lms; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'h5py') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
