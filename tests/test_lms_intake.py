"""Intake of LMS downloads (autograder/lms/intake.py), on downloads built from each LMS's naming rules."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from autograder.lms.archive import read_bytes
from autograder.lms.intake import UnknownLayoutError, canvas_original_name, read_download
from lms_fixtures import canvas, gradescope, moodle

MODULE = b"import numpy as np\n"
MODEL = b"PK\x03\x04 not really a model"


def canvas_class():
    return [
        canvas.CanvasUpload("Müller, Jürgen", 12, 100, "hello_mnist.py", b"first upload"),
        canvas.CanvasUpload("Müller, Jürgen", 12, 101, "model.keras", MODEL),
        canvas.CanvasUpload("Müller, Jürgen", 12, 150, "hello_mnist-1.py", b"second upload"),
        canvas.CanvasUpload("Doe, Jane", 13, 200, "hello_mnist.py", MODULE, late=True),
        canvas.CanvasUpload("Doe, Jane", 13, 201, "model.keras", MODEL, late=True),
        canvas.CanvasUpload("O'Brien_7_, Seán", 14, 300, "hello mnist:final?.py", MODULE),
        canvas.CanvasUpload("", 0, 400, "hello_mnist.py", MODULE, anonymous_id="aB3dE"),
    ]


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_canvas_download_gives_one_entry_per_student_with_the_latest_upload(tmp_path, as_zip):
    path = canvas.build_download(tmp_path, canvas_class(), as_zip=as_zip,
                                 extra={"__MACOSX/._doejane_13_200_hello_mnist.py": b"junk"})
    download = read_download(path)
    assert download.layout == "canvas"
    entries = {entry.key: entry for entry in download.entries}
    assert sorted(entries) == ["canvas:12", "canvas:13", "canvas:14", "canvas:anon_aB3dE"]
    jurgen = entries["canvas:12"]
    assert jurgen.display_name == "müllerjürgen"  # Canvas's lastfirst, Unicode kept
    assert sorted(jurgen.files) == ["hello_mnist.py", "model.keras"]
    assert read_bytes(jurgen.files["hello_mnist.py"], max_bytes=100) == b"second upload"
    assert jurgen.attempt == 2 and [a.attempt for a in jurgen.superseded] == [1]
    assert read_bytes(jurgen.superseded[0].files["hello_mnist.py"], max_bytes=100) == b"first upload"
    assert jurgen.late is False and jurgen.submitted_at is None
    assert entries["canvas:13"].late is True
    # Canvas keeps the student's file name, with its path characters replaced by "_".
    assert list(entries["canvas:14"].files) == ["hello mnist_final_.py"]
    assert entries["canvas:14"].display_name == "obrien7seán"
    anonymous = entries["canvas:anon_aB3dE"]
    assert anonymous.anonymous and list(anonymous.files) == ["hello_mnist.py"]
    assert any("__MACOSX" in item for item in download.ignored)


def test_canvas_text_entries_are_recognised_but_ignored(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "doejane_13_text.html").write_text("<p>hi</p>")
    (folder / "roejohn_LATE_14_link.html").write_text("<a>")
    (folder / "doejane_13_200_hello_mnist.py").write_bytes(MODULE)
    download = read_download(folder)
    assert [entry.key for entry in download.entries] == ["canvas:13"]
    assert sum("text entry or URL" in item for item in download.ignored) == 2


@pytest.mark.parametrize("name, expected", [
    ("hello_mnist.py", ("hello_mnist.py", 0)), ("hello_mnist-1.py", ("hello_mnist.py", 1)),
    ("model-7.keras", ("model.keras", 7)), ("archive-2.tar.gz", ("archive.tar.gz", 2)),
    ("notes-1", ("notes", 1)), ("hello_mnist-2a.py", ("hello_mnist-2a.py", 0)), ("hw-2024.py", ("hw-2024.py", 0)),
    ("model-0a1b2c3d-1111-2222-3333-444455556666.keras", ("model.keras", 8)),
])
def test_canvas_copy_suffix_is_removed_as_make_unique_filename_adds_it(name, expected):
    assert canvas_original_name(name) == expected


@pytest.mark.parametrize("folders, version, as_zip, layout", [
    (True, "4.1", True, "moodle"), (True, "3.9", False, "moodle"), (False, "4.1", True, "moodle-flat"),
    (False, "3.9", False, "moodle-flat")])
def test_moodle_download_with_and_without_folders(tmp_path, folders, version, as_zip, layout):
    uploads = [moodle.MoodleUpload("Zoë Ñúñez", 731904, {"hello_mnist.py": MODULE, "model.keras": MODEL}),
               moodle.MoodleUpload("Li_Wei", 731905, {"hello_mnist.py": b"li"}),
               moodle.MoodleUpload("Li_Wei", 731905, {"onlinetext.html": b"<p>"}, plugin="onlinetext")]
    download = read_download(moodle.build_download(tmp_path, uploads, folders=folders, version=version,
                                                   as_zip=as_zip))
    assert download.layout == layout
    entries = {entry.key: entry for entry in download.entries}
    assert sorted(entries) == ["moodle:731904", "moodle:731905"]
    assert entries["moodle:731904"].display_name == "Zoë Ñúñez"
    assert entries["moodle:731905"].display_name == "Li Wei"  # Moodle turns "_" into " "
    assert sorted(entries["moodle:731904"].files) == ["hello_mnist.py", "model.keras"]
    assert read_bytes(entries["moodle:731905"].files["hello_mnist.py"], max_bytes=10) == b"li"
    assert any("onlinetext" in item for item in download.ignored)


def test_moodle_folders_keep_the_students_sub_folders(tmp_path):
    uploads = [moodle.MoodleUpload("Ann Lee", 5, {"src/hello_mnist.py": MODULE, "model.keras": MODEL})]
    download = read_download(moodle.build_download(tmp_path, uploads, folders=True, as_zip=True))
    assert sorted(download.entries[0].files) == ["model.keras", "src/hello_mnist.py"]


def gradescope_class():
    return [
        gradescope.GradescopeSubmission(
            9001, [{"name": "Ann Lee", "sid": "A1", "email": "ann@uni.edu"}], "2023-09-20 23:18:40.180402000 -07:00",
            {"hello_mnist.py": MODULE, "model.keras": MODEL},
            history=["2023-09-18 10:00:00.000000000 -07:00", "2023-09-19 10:00:00.000000000 -07:00"]),
        gradescope.GradescopeSubmission(
            9002, [{"name": "Bo Ek", "sid": "B2", "email": "bo@uni.edu"}, {"name": "Çağla", "sid": None,
                                                                            "email": "cagla@uni.edu"}],
            "2023-09-21 08:00:00.000000000 +02:00", {"src/hello_mnist.py": MODULE}),
    ]


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_gradescope_export_gives_identity_times_history_and_groups(tmp_path, as_zip):
    download = read_download(gradescope.build_export(tmp_path, gradescope_class(), as_zip=as_zip))
    assert download.layout == "gradescope"
    entries = {entry.key: entry for entry in download.entries}
    assert sorted(entries) == ["gradescope:A1", "gradescope:B2", "gradescope:cagla@uni.edu"]
    ann = entries["gradescope:A1"]
    assert (ann.display_name, ann.email, ann.sis_id) == ("Ann Lee", "ann@uni.edu", "A1")
    assert ann.submitted_at == datetime(2023, 9, 20, 23, 18, 40, 180402, tzinfo=timezone(timedelta(hours=-7)))
    assert ann.attempt == 3 and [a.attempt for a in ann.superseded] == [1, 2]
    assert ann.superseded[0].submitted_at < ann.superseded[1].submitted_at < ann.submitted_at
    assert ann.superseded[0].files == {} and ann.group_id is None
    bo, cagla = entries["gradescope:B2"], entries["gradescope:cagla@uni.edu"]
    assert bo.group_id == cagla.group_id == "submission_9002"
    assert bo.files == cagla.files and list(bo.files) == ["src/hello_mnist.py"]
    assert cagla.display_name == "Çağla" and cagla.sis_id is None


def test_the_same_student_twice_keeps_the_latest_and_records_the_other(tmp_path):
    submissions = gradescope_class()[:1] + [gradescope.GradescopeSubmission(
        9003, [{"name": "Ann Lee", "sid": "A1", "email": "ann@uni.edu"}], "2023-09-22 09:00:00.000000000 -07:00",
        {"hello_mnist.py": b"newest"})]
    download = read_download(gradescope.build_export(tmp_path, submissions, as_zip=True))
    (ann,) = download.entries
    assert ann.submission_id == "9003" and read_bytes(ann.files["hello_mnist.py"], max_bytes=10) == b"newest"
    assert [a.submission_id for a in ann.superseded][-1] == "9001"


def test_layout_can_be_chosen_and_a_wrong_choice_is_explained(tmp_path):
    path = canvas.build_download(tmp_path, canvas_class(), as_zip=True)
    assert read_download(path, layout="canvas").layout == "canvas"
    with pytest.raises(UnknownLayoutError, match="layout='moodle'.*none is named like Moodle's"):
        read_download(path, layout="moodle")
    with pytest.raises(ValueError, match="Unknown layout 'blackboard'"):
        read_download(path, layout="blackboard")


def test_an_unknown_layout_is_refused_with_what_was_found(tmp_path):
    folder = tmp_path / "class"
    for name in ("alice.py", "bob.py", "notes.txt"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    (folder / "carol" / "hello_mnist.py").parent.mkdir()
    (folder / "carol" / "hello_mnist.py").write_text("x")
    with pytest.raises(UnknownLayoutError) as caught:
        read_download(folder)
    message = str(caught.value)
    assert "3 files and 1 folder" in message and "'alice.py'" in message and "'carol/'" in message
    assert "Canvas's <lastfirst>_[LATE_]<userid>_<fileid>_<name>" in message
    assert "no submission_metadata.yml" in message


def test_a_download_inside_one_extra_folder_is_still_recognised(tmp_path):
    inner = canvas.build_download(tmp_path / "unzipped", canvas_class()[:2], as_zip=False)
    assert inner.parent.name == "unzipped"
    assert read_download(tmp_path / "unzipped").layout == "canvas"


def test_unsafe_zip_members_are_never_part_of_an_entry(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("doejane_13_200_hello_mnist.py", MODULE)
        archive.writestr("../roejohn_14_300_hello_mnist.py", MODULE)
        archive.writestr("/etc/passwd_15_400_x.py", MODULE)
        link = zipfile.ZipInfo("linkjane_16_500_hello_mnist.py")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    download = read_download(path)
    assert [entry.key for entry in download.entries] == ["canvas:13"]
    assert sum("climbs out" in item or "absolute" in item for item in download.ignored) == 2
    assert any("symbolic link" in item for item in download.ignored)


def test_moodle_flat_names_that_look_numeric_are_not_taken_for_canvas(tmp_path):
    uploads = [moodle.MoodleUpload("Madonna", 731907, {"lab_1_2.py": MODULE}),
               moodle.MoodleUpload("Ann Lee", 731908, {"hello_mnist.py": MODULE})]
    download = read_download(moodle.build_download(tmp_path, uploads, folders=False, as_zip=True))
    assert download.layout == "moodle-flat"
    assert [list(entry.files) for entry in download.entries] == [["lab_1_2.py"], ["hello_mnist.py"]]
