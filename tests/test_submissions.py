"""Intake: finding submissions, stable identities, staging only the gradable files, refusing unsafe archives,
and never raising for anything a submission holds."""

import json
import os
import struct
import time
import tracemalloc
import zipfile

import pytest

from autograder.archives import ArchiveError, directory_info, open_zip
from autograder.submissions import Expected, Layout, SubmissionPathError, discover, safe_folder, stage

MODULE = "def preprocess(images, labels):\n    return images, labels\n"
EXPECTED = Expected((Layout("v1", "hello_mnist", "hello_mnist.py", "model.keras"),), default="v1")


def make(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content) if isinstance(content, str) else (folder / name).write_bytes(content)
    return folder


def test_discover_expands_a_class_folder_with_stable_keys(tmp_path):
    make(tmp_path / "class" / "alice", **{"hello_mnist.py": MODULE})
    make(tmp_path / "class" / "bob", **{"hello_mnist.py": MODULE})
    with zipfile.ZipFile(tmp_path / "class" / "carol.zip", "w") as archive:
        archive.writestr("carol/hello_mnist.py", MODULE)
    make(tmp_path / "dave", **{"hello_mnist.py": MODULE})
    found = discover([tmp_path / "class", tmp_path / "dave"])
    assert [(s.key, s.folder, s.kind) for s in found] == [("alice", "alice", "folder"), ("bob", "bob", "folder"),
                                                          ("carol", "carol", "zip"), ("dave", "dave", "folder")]
    assert all(not s.flags for s in found)


def test_unicode_names_keep_their_identity_whoever_else_is_in_the_class(tmp_path):
    """Zoé and Zoë used to become Zo and Zo-2, and a late Zoè shifted the suffixes: grades swapped owners."""
    for name in ("Zoé", "Zoë"):
        make(tmp_path / "class" / name, **{"hello_mnist.py": MODULE})
    first = {s.key: s.folder for s in discover([tmp_path / "class"])}
    make(tmp_path / "class" / "Zoè", **{"hello_mnist.py": MODULE})
    second = {s.key: s.folder for s in discover([tmp_path / "class"])}
    assert set(first) == {"Zoé", "Zoë"} and first.items() <= second.items(), (first, second)
    assert len(set(second.values())) == 3 and all(folder.startswith("Zoe-") for folder in second.values())
    # The same name typed on macOS (decomposed) is the same student.
    assert [s.key for s in discover([make(tmp_path / "mac" / "Zoe\u0301", **{"hello_mnist.py": MODULE})])] == ["Zoé"]


def test_non_latin_names_are_transliterated_and_keep_the_original_for_display(tmp_path):
    for name in ("王芳", "Андрей", "José Núñez"):
        make(tmp_path / "class" / name, **{"hello_mnist.py": MODULE})
    found = {s.display_name: s.folder for s in discover([tmp_path / "class"])}
    assert found["王芳"].startswith("WangFang-") and found["Андрей"].startswith("Andrey-")
    assert found["José Núñez"].startswith("Jose_Nunez-")
    assert safe_folder("alice") == "alice" and safe_folder("../..") != "../.."
    assert all("/" not in folder and not folder.startswith(".") for folder in found.values())


def test_two_sources_with_one_name_are_told_apart_by_their_source_and_flagged(tmp_path):
    make(tmp_path / "class" / "alice", **{"hello_mnist.py": MODULE})
    with zipfile.ZipFile(tmp_path / "class" / "alice.zip", "w") as archive:
        archive.writestr("hello_mnist.py", MODULE)
    found = discover([tmp_path / "class"])
    assert len(found) == 2 and len({s.key for s in found}) == 2 and len({s.folder for s in found}) == 2
    assert all(s.display_name == "alice" and "name_collision" in s.flags for s in found)
    assert {s.key for s in discover([tmp_path / "class"])} == {s.key for s in found}, "deterministic"
    # The same path given twice is one submission.
    assert len(discover([tmp_path / "class" / "alice", tmp_path / "class" / "alice"])) == 1


def test_the_parent_folder_given_by_mistake_is_refused_before_anything_is_graded(tmp_path):
    repository = make(tmp_path / "work" / "main", **{"README.md": "x", "pyproject.toml": "x"})
    make(repository / "autograder", **{"grade.py": "x = 1\n"})
    make(tmp_path / "work" / "shared" / "seed", **{"lecture.md": "x"})
    make(tmp_path / "work" / "notes", **{"todo.txt": "x"})
    with pytest.raises(SubmissionPathError, match="does not look like a folder of submissions") as error:
        discover([tmp_path / "work"])
    assert "main" in str(error.value) and "shared" in str(error.value)
    # A real class where some students submitted nothing (an empty folder) is still a class.
    make(tmp_path / "class" / "alice", **{"hello_mnist.py": MODULE})
    (tmp_path / "class" / "bob").mkdir()
    assert [s.key for s in discover([tmp_path / "class"])] == ["alice", "bob"]


def test_discover_refuses_what_is_not_there(tmp_path):
    with pytest.raises(SubmissionPathError, match="does not exist"):
        discover([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionPathError, match="holds no submissions"):
        discover([tmp_path / "empty"])


def test_only_the_module_and_the_model_are_staged(tmp_path):
    folder = make(tmp_path / "alice", **{"hello_mnist.py": MODULE, "conftest.py": "import os\n",
                                         "sitecustomize.py": "x = 1\n", "evil.pth": "import os\n"})
    staged = stage(discover([folder])[0], tmp_path / "staged", expected=EXPECTED)
    assert sorted(p.name for p in staged.directory.iterdir()) == ["hello_mnist.py"]
    assert staged.has_module and staged.digest and not staged.problems
    assert "no_model" in staged.flags


def test_a_module_one_folder_down_is_found(tmp_path):
    make(tmp_path / "class" / "alice" / "hw1", **{"hello_mnist.py": MODULE})
    make(tmp_path / "class" / "bob", **{"hello_mnist.py": MODULE})
    alice = discover([tmp_path / "class"])[0]
    assert alice.key == "alice"
    staged = stage(alice, tmp_path / "staged", expected=EXPECTED)
    assert staged.has_module and any("sub-folder" in p for p in staged.problems), staged.problems


def test_symlinked_module_is_refused(tmp_path):
    folder = make(tmp_path / "mallory")
    (folder / "hello_mnist.py").symlink_to("/etc/passwd")
    staged = stage(discover([folder])[0], tmp_path / "staged", expected=EXPECTED)
    assert not staged.has_module and "symlink" in staged.flags


def test_zip_traversal_links_and_bombs_are_ignored(tmp_path):
    archive = tmp_path / "mallory.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("hello_mnist.py", MODULE)
        handle.writestr("../../outside.py", "x")
        handle.writestr("/abs/path.py", "x")
        link = zipfile.ZipInfo("link.py")
        link.external_attr = 0o120777 << 16
        handle.writestr(link, "/etc/passwd")
        handle.writestr("model.keras", b"\0" * (70 * 2**20))
    staged = stage(discover([archive])[0], tmp_path / "staged", expected=EXPECTED)
    assert staged.has_module
    assert {"zip_path_traversal", "zip_symlink", "zip_bomb"} <= set(staged.flags)
    assert sorted(p.name for p in staged.directory.iterdir()) == ["hello_mnist.py"]
    assert not (tmp_path / "outside.py").exists() and not (tmp_path.parent / "outside.py").exists()


def test_corrupt_and_empty_zips_are_explained(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    staged = stage(discover([tmp_path / "broken.zip"])[0], tmp_path / "a", expected=EXPECTED)
    assert "corrupt_zip" in staged.flags and not staged.has_module
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    staged = stage(discover([tmp_path / "empty.zip"])[0], tmp_path / "b", expected=EXPECTED)
    assert "missing_module" in staged.flags and any("No hello_mnist.py" in p for p in staged.problems)


def _corrupt_deflate(path, name, data):
    """A zip whose member's deflate stream is damaged (bit rot, a broken upload), its CRC left as it was."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(name, data)
    raw = bytearray(path.read_bytes())
    start = 30 + len(name)  # the first local header, then the compressed bytes
    for index in range(start + 2, start + 40):
        raw[index] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def test_a_zip_member_with_a_broken_deflate_stream_is_that_submissions_problem(tmp_path):
    archive = _corrupt_deflate(tmp_path / "bitrot.zip", "hello_mnist.py", MODULE * 50)
    staged = stage(discover([archive])[0], tmp_path / "staged", expected=EXPECTED)
    assert "corrupt_zip" in staged.flags and not staged.has_module, staged.flags


def test_a_member_name_flagged_utf8_that_is_not_is_refused(tmp_path):
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("hello_mnist.py", MODULE)
    raw = bytearray(archive.read_bytes())
    for offset in (raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")):
        flag_at = offset + (6 if raw[offset + 2] == 3 else 8)
        struct.pack_into("<H", raw, flag_at, struct.unpack_from("<H", raw, flag_at)[0] | 0x800)
    name_at = raw.find(b"hello_mnist.py", raw.find(b"PK\x01\x02"))
    raw[name_at] = 0xFF  # not UTF-8
    archive.write_bytes(bytes(raw))
    staged = stage(discover([archive])[0], tmp_path / "staged", expected=EXPECTED)
    assert "corrupt_zip" in staged.flags, staged.flags


def test_a_many_entry_archive_is_refused_at_a_bounded_cost(tmp_path):
    """1.4 million entries used to cost the trusted process 548 MB before the member count was checked."""
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as handle:
        for index in range(50_000):
            handle.writestr(f"{index}", b"")
    assert directory_info(path).entries == 50_000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ArchiveError) as error:
        open_zip(path, max_entries=2000, max_directory_bytes=2**20)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert error.value.too_large and peak < 1 * 2**20 and seconds < 1.0, (peak, seconds)
    staged = stage(discover([path])[0], tmp_path / "staged", expected=EXPECTED)
    assert "oversized_file" in staged.flags


def test_renamed_module_notebook_and_encoding_are_explained(tmp_path):
    staged = stage(discover([make(tmp_path / "r", **{"hello_mnist (1).py": MODULE})])[0], tmp_path / "s1", expected=EXPECTED)
    assert staged.has_module and "renamed_module" in staged.flags
    staged = stage(discover([make(tmp_path / "n", **{"hello_mnist.ipynb": "{}"})])[0], tmp_path / "s2", expected=EXPECTED)
    assert not staged.has_module and "notebook_instead_of_module" in staged.flags
    staged = stage(discover([make(tmp_path / "l", **{"hello_mnist.py": "# caf\xe9\n".encode("latin-1")})])[0],
                   tmp_path / "s3", expected=EXPECTED)
    assert "not_utf8" in staged.flags


def test_staged_files_are_readable_by_the_sandbox_uid(tmp_path):
    staged = stage(discover([make(tmp_path / "a", **{"hello_mnist.py": MODULE})])[0], tmp_path / "staged", expected=EXPECTED)
    assert os.stat(staged.directory).st_mode & 0o005 == 0o005
    assert os.stat(staged.directory / "hello_mnist.py").st_mode & 0o004


def test_suspicious_calls_are_flagged_for_the_ta(tmp_path):
    source = "import subprocess\nimport os\ndef preprocess(i, l):\n    os._exit(0)\n"
    staged = stage(discover([make(tmp_path / "a", **{"hello_mnist.py": source})])[0], tmp_path / "staged", expected=EXPECTED)
    flag = next(f for f in staged.flags if f.startswith("suspicious_code:"))
    assert "subprocess" in flag and "_exit" in flag


@pytest.mark.parametrize("config", [
    [1, 2, 3],                                                           # a list where the model belongs
    {"class_name": "Sequential", "config": "layers"},                    # a string where its config belongs
    {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": "units=10"}]}},
    {"class_name": "Sequential", "config": {"layers": [{"class_name": ["Dense"]}]}},
    {"class_name": "Sequential", "module": ["keras"], "config": {"layers": [{"class_name": "Dense", "config": {}}]}},
])
def test_odd_model_configs_are_a_refusal_never_an_exception(tmp_path, config):
    folder = make(tmp_path / "alice", **{"hello_mnist.py": MODULE})
    with zipfile.ZipFile(folder / "model.keras", "w") as handle:
        handle.writestr("config.json", json.dumps(config))
        handle.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    staged = stage(discover([folder])[0], tmp_path / "staged", expected=EXPECTED)
    assert staged.model_file["present"] and not staged.model_file["accepted"], staged.model_file
    assert staged.model_file["flag"] in ("unsafe_model", "corrupt_model")


def test_a_model_member_with_a_broken_deflate_stream_is_a_corrupt_model(tmp_path):
    folder = make(tmp_path / "alice", **{"hello_mnist.py": MODULE})
    _corrupt_deflate(folder / "model.keras", "config.json", json.dumps({"class_name": "Sequential"}) * 40)
    with zipfile.ZipFile(folder / "model.keras", "a") as handle:
        handle.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    staged = stage(discover([folder])[0], tmp_path / "staged", expected=EXPECTED)
    assert staged.model_file["flag"] == "corrupt_model", staged.model_file


TWO_VERSIONS = Expected((Layout("v1", "hello_mnist", "hello_mnist.py", "model.keras"),
                         Layout("v2", "hello_fashion", "hello_fashion.py", "model.keras")), default="v2")
HEADER = "# Generated from solutions/{v}/x.py by `python -m autograder release` (hello_{n} {v}); instructors: ...\n"


@pytest.mark.parametrize("files, requested, version, flag", [
    ({"hello_mnist.py": HEADER.format(v="v1", n="mnist") + MODULE}, None, "v1", None),
    ({"hello_fashion.py": HEADER.format(v="v2", n="fashion") + MODULE}, None, "v2", None),
    ({"hello_fashion.py": MODULE}, None, "v2", None),                         # the file name says it
    ({"hello_mnist.py": MODULE}, None, "v1", None),
    ({"renamed.py": MODULE}, None, "v2", "version_assumed"),                  # nothing says: the default
    ({"hello_mnist.py": HEADER.format(v="v7", n="mnist") + MODULE}, None, "v2", "unknown_version"),
    ({"hello_fashion.py": HEADER.format(v="v1", n="mnist") + MODULE}, "v2", "v2", "version_mismatch"),
    ({"hello_mnist.py": HEADER.format(v="v1", n="mnist") + MODULE}, "v1", "v1", None),
])
def test_the_version_comes_from_the_submission_or_the_ta(tmp_path, files, requested, version, flag):
    folder = make(tmp_path / "alice", **files)
    expected = Expected(TWO_VERSIONS.layouts, default="v2", requested=requested)
    staged = stage(discover([folder])[0], tmp_path / "staged", expected=expected)
    assert staged.version == version and staged.has_module
    assert (staged.directory / expected.layout(version).module).is_file(), "staged under the version's own name"
    if flag:
        assert flag in staged.flags and staged.problems, staged.flags
    else:
        assert not {"version_assumed", "unknown_version", "version_mismatch"} & set(staged.flags), staged.flags
