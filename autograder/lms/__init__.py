"""LMS in, LMS out: read Canvas, Moodle and Gradescope downloads and rosters; write what each LMS imports.

One job per module, data flowing one way:

* ``archive``: list a download (folder or zip) at a bounded cost; read a member by its locator, capped.
* ``identity``: a student's identity key (``canvas:12345``) and filesystem-safe folder name.
* ``intake``: recognise a download's layout and read it into one ``Entry`` per student (latest attempt).
* ``roster``: read the LMS's own roster export and join a download's entries to it.
* ``late``: days late and the instructor's penalty, from the LMS's times or markers and the configuration.
* ``exports``: gradebook files each LMS imports unchanged, and feedback files laid out for upload.
* ``similarity``: near-identical source code across a class, with an HTML report (flags, not penalties).
* ``weights``: identical trained models by their weights (flags, not penalties).

Nothing here imports Keras, loads a model file, unpickles, or runs student code.

Example:
    >>> from autograder.lms import read_download, read_roster, join_roster
    >>> download = read_download(Path("submissions.zip"))
    >>> joined = join_roster(download.entries, read_roster(Path("gradebook.csv")))
"""

from .archive import DownloadError, Listing, Member, MemberError, copy_to, list_download, read_bytes
from .exports import (EXPORTS, ExportError, GradeRow, write_canvas_feedback_folders, write_canvas_gradebook,
                      write_export, write_gradescope_scores, write_moodle_feedback_zip, write_moodle_worksheet)
from .identity import identity_key, safe_folder_name
from .intake import LAYOUTS, Attempt, Download, Entry, UnknownLayoutError, read_download
from .late import (LateConfigurationError, LatePenalty, LatePolicy, apply_penalty, extension_for, late_penalty,
                   read_extensions)
from .roster import ROSTER_FORMATS, Joined, Match, Roster, RosterError, RosterStudent, join_roster, read_roster
from .similarity import SimilarityResult, SimilarPair, compare_sources, render_report
from .weights import ModelGroup, identical_models, weights_fingerprint

__all__ = [
    "Attempt", "Download", "DownloadError", "EXPORTS", "Entry", "ExportError", "GradeRow", "Joined", "LAYOUTS",
    "LateConfigurationError", "LatePenalty", "LatePolicy", "Listing", "Match", "Member", "MemberError",
    "ModelGroup", "ROSTER_FORMATS", "Roster", "RosterError", "RosterStudent", "SimilarPair", "SimilarityResult",
    "UnknownLayoutError", "apply_penalty", "compare_sources", "copy_to", "extension_for", "identical_models",
    "identity_key", "join_roster", "late_penalty", "list_download", "read_bytes", "read_download",
    "read_extensions", "read_roster", "render_report", "safe_folder_name", "weights_fingerprint",
    "write_canvas_feedback_folders", "write_canvas_gradebook", "write_export", "write_gradescope_scores",
    "write_moodle_feedback_zip", "write_moodle_worksheet",
]
