"""Intake: finding submissions, staging only the gradable files, refusing unsafe archives."""

import os
import zipfile

import pytest

from autograder.submissions import SubmissionPathError, discover, stage

MODULE = "def preprocess(images, labels):\n    return images, labels\n"


def make(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content) if isinstance(content, str) else (folder / name).write_bytes(content)
    return folder


def test_discover_expands_a_class_folder_and_names_uniquely(tmp_path):
    make(tmp_path / "class" / "alice", **{"hello_mnist.py": MODULE})
    make(tmp_path / "class" / "bob", **{"hello_mnist.py": MODULE})
    with zipfile.ZipFile(tmp_path / "class" / "carol.zip", "w") as archive:
        archive.writestr("carol/hello_mnist.py", MODULE)
    make(tmp_path / "dave", **{"hello_mnist.py": MODULE})
    found = discover([tmp_path / "class", tmp_path / "dave" / "hello_mnist.py", tmp_path / "dave"])
    assert [(s.name, s.kind) for s in found] == [("alice", "folder"), ("bob", "folder"), ("carol", "zip"),
                                                 ("dave", "file"), ("dave-2", "folder")]


def test_discover_refuses_what_is_not_there(tmp_path):
    with pytest.raises(SubmissionPathError, match="does not exist"):
        discover([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionPathError, match="holds no submissions"):
        discover([tmp_path / "empty"])


def test_only_the_module_and_the_model_are_staged(tmp_path):
    folder = make(tmp_path / "alice", **{"hello_mnist.py": MODULE, "conftest.py": "import os\n",
                                         "sitecustomize.py": "x = 1\n", "evil.pth": "import os\n"})
    staged = stage(discover([folder])[0], tmp_path / "staged")
    assert sorted(p.name for p in staged.directory.iterdir()) == ["hello_mnist.py"]
    assert staged.has_module and staged.digest and not staged.problems


def test_symlinked_module_is_refused(tmp_path):
    folder = make(tmp_path / "mallory")
    (folder / "hello_mnist.py").symlink_to("/etc/passwd")
    staged = stage(discover([folder])[0], tmp_path / "staged")
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
    staged = stage(discover([archive])[0], tmp_path / "staged")
    assert staged.has_module
    assert {"zip_path_traversal", "zip_symlink", "zip_bomb"} <= set(staged.flags)
    assert sorted(p.name for p in staged.directory.iterdir()) == ["hello_mnist.py"]
    assert not (tmp_path / "outside.py").exists() and not (tmp_path.parent / "outside.py").exists()


def test_corrupt_and_empty_zips_are_explained(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    staged = stage(discover([tmp_path / "broken.zip"])[0], tmp_path / "a")
    assert "corrupt_zip" in staged.flags and not staged.has_module
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    staged = stage(discover([tmp_path / "empty.zip"])[0], tmp_path / "b")
    assert "missing_module" in staged.flags and any("No hello_mnist.py" in p for p in staged.problems)


def test_renamed_module_notebook_and_encoding_are_explained(tmp_path):
    staged = stage(discover([make(tmp_path / "r", **{"hello_mnist (1).py": MODULE})])[0], tmp_path / "s1")
    assert staged.has_module and "renamed_module" in staged.flags
    staged = stage(discover([make(tmp_path / "n", **{"hello_mnist.ipynb": "{}"})])[0], tmp_path / "s2")
    assert not staged.has_module and "notebook_instead_of_module" in staged.flags
    staged = stage(discover([make(tmp_path / "l", **{"hello_mnist.py": "# caf\xe9\n".encode("latin-1")})])[0],
                   tmp_path / "s3")
    assert "not_utf8" in staged.flags


def test_staged_files_are_readable_by_the_sandbox_uid(tmp_path):
    staged = stage(discover([make(tmp_path / "a", **{"hello_mnist.py": MODULE})])[0], tmp_path / "staged")
    assert os.stat(staged.directory).st_mode & 0o005 == 0o005
    assert os.stat(staged.directory / "hello_mnist.py").st_mode & 0o004


def test_suspicious_calls_are_flagged_for_the_ta(tmp_path):
    source = "import subprocess\nimport os\ndef preprocess(i, l):\n    os._exit(0)\n"
    staged = stage(discover([make(tmp_path / "a", **{"hello_mnist.py": source})])[0], tmp_path / "staged")
    flag = next(f for f in staged.flags if f.startswith("suspicious_code:"))
    assert "subprocess" in flag and "_exit" in flag
