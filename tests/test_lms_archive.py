"""Bounded reading of downloads (autograder/lms/archive.py): listing, locators, caps, hostile zips."""

from __future__ import annotations

import os
import struct
import zipfile

import pytest

from autograder.lms.archive import (DownloadError, MemberError, copy_to, list_download, parse_zip_locator,
                                    read_bytes, zip_locator)


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_listing_skips_junk_and_unsafe_names(tmp_path):
    path = make_zip(tmp_path / "d.zip", {
        "a/hello_mnist.py": b"x", "__MACOSX/a/._hello_mnist.py": b"j", "a/.DS_Store": b"j", "../up.py": b"u",
        "/abs.py": b"u", "C:/windows.py": b"u", "a\\back.py": b"b"})
    listing = list_download(path)
    assert [member.path for member in listing.members] == ["a/back.py", "a/hello_mnist.py"]
    assert len(listing.ignored) == 5


def test_locators_round_trip_names_with_hash_percent_and_unicode(tmp_path):
    folder = tmp_path / "dir #1 100%"
    folder.mkdir()
    name = "ünï #cöde% 50.py"
    path = make_zip(folder / "dl #2.zip", {name: b"data"})
    (member,) = list_download(path).members
    assert member.path == name and parse_zip_locator(member.locator) == (path, name)
    assert read_bytes(member.locator, max_bytes=10) == b"data"
    assert zip_locator(path, name) == member.locator


def test_reads_stop_at_the_cap_whatever_the_header_says(tmp_path):
    path = make_zip(tmp_path / "big.zip", {"big.bin": b"\0" * 10_000})
    (member,) = list_download(path).members
    with pytest.raises(MemberError, match="10,000 bytes; the limit is 100"):
        read_bytes(member.locator, max_bytes=100)
    # A header that lies about the size (a zip bomb) is caught while reading.
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 50)  # uncompressed size in the central directory
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 50)
    path.write_bytes(bytes(data))
    with pytest.raises(MemberError):
        read_bytes(member.locator, max_bytes=100)


def test_a_zip_declaring_too_many_entries_is_refused_before_it_is_parsed(tmp_path):
    path = make_zip(tmp_path / "many.zip", {f"f{i}.py": b"" for i in range(30)})
    with pytest.raises(DownloadError, match=r"holds 30 files \(at most 10"):
        list_download(path, max_members=10)
    with pytest.raises(DownloadError, match="file list is"):
        list_download(path, max_directory_bytes=100)


def test_not_a_zip_and_missing_paths_are_the_tas_to_fix(tmp_path):
    (tmp_path / "grades.csv").write_text("a,b\n")
    with pytest.raises(DownloadError, match="not a zip archive"):
        list_download(tmp_path / "grades.csv")
    with pytest.raises(DownloadError, match="does not exist"):
        list_download(tmp_path / "nothing")


def test_folder_listing_never_follows_links(tmp_path):
    root = tmp_path / "download"
    (root / "real").mkdir(parents=True)
    (root / "real" / "hello_mnist.py").write_text("x")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "real" / "link.py")
    os.symlink(tmp_path, root / "escape")
    listing = list_download(root)
    assert [member.path for member in listing.members] == ["real/hello_mnist.py"]
    assert sorted(item.split(":")[0] for item in listing.ignored) == ["escape", "real/link.py"]
    with pytest.raises(MemberError, match="link"):
        read_bytes(str(root / "real" / "link.py"), max_bytes=100)


def test_copy_to_stays_inside_the_target_folder(tmp_path):
    path = make_zip(tmp_path / "d.zip", {"x.py": b"print()"})
    (member,) = list_download(path).members
    target = copy_to(member.locator, tmp_path / "out", "sub/hello_mnist.py", max_bytes=100)
    assert target.read_bytes() == b"print()" and target.parent.parent == (tmp_path / "out").resolve()
    for bad in ("../x.py", "/etc/x.py", "a/../../x.py", "a\\..\\x.py", ""):
        with pytest.raises(MemberError):
            copy_to(member.locator, tmp_path / "out", bad, max_bytes=100)
    os.symlink(tmp_path, tmp_path / "out" / "away")
    with pytest.raises(MemberError, match="symbolic link|outside"):
        copy_to(member.locator, tmp_path / "out", "away/x.py", max_bytes=100)
