"""Ids are confined to the archive and every file that is not read says why: `..` members, symlinks (files,
folders, loops), random bytes, `.MD`, files over 1 MB, overlong ids; duplicate slugs are warned about."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from typer.testing import CliRunner

from recommender.archive import MAX_FILE, MAX_ID, confined_id, read_archive
from recommender.cli import app

EVENT = "### [2016-03-14](https://example.org)\n\n# {headline}\n\nA summary of it.\n"


def event(headline: str = "Something happened") -> bytes:
    return EVENT.format(headline=headline).encode()


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = len(data), kind, link
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("news/2016/03/14/x.md", "news/2016/03/14/x.md"),
        ("./news//2016/./03/14/x.md", "news/2016/03/14/x.md"),
        ("/news/2016/03/14/x.md", "news/2016/03/14/x.md"),
        ("news/2016/03/14/../../../../../../../../tmp/x/evil.md", None),
        ("../evil.md", None),
        ("news/2016/../2016/03/14/x.md", None),
    ],
)
def test_ids_are_normalised_and_confined(name, expected):
    assert confined_id(name) == expected


def test_a_tarball_cannot_name_a_file_outside_the_archive(tmp_path):
    path = tmp_path / "news.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "./news/2016/03/14/good.md", event())
        add(tar, "news/2016/03/14/../../../../../../../../tmp/x/evil.md", event("Evil"))
        add(tar, "news/2016/03/14/big.md", event() + b"x" * MAX_FILE)
        add(tar, "news/2016/03/14/link.md", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add(tar, "news/2016/03/14/LOUD.MD", event())
        add(tar, "news/2016/03/14/" + "n" * MAX_ID + ".md", event())
    archive = read_archive(path)
    assert list(archive.events) == ["news/2016/03/14/good.md"]
    reasons = {s.path.split(":", 1)[1]: s.reason for s in archive.skipped}
    assert "outside the archive" in reasons["news/2016/03/14/../../../../../../../../tmp/x/evil.md"]
    assert f"more than an event's {MAX_FILE:,}" in reasons["news/2016/03/14/big.md"]
    assert "link" in reasons["news/2016/03/14/link.md"]
    assert "not '.md'" in reasons["news/2016/03/14/LOUD.MD"]
    assert f"more than {MAX_ID}" in reasons["news/2016/03/14/" + "n" * MAX_ID + ".md"]
    assert len(archive.skipped) == 5


def test_every_dropped_file_of_a_folder_gets_a_reason(tmp_path):
    root, outside = tmp_path / "archive", tmp_path / "outside"
    day = root / "news" / "2016" / "03" / "14"
    day.mkdir(parents=True)
    outside.mkdir()
    (outside / "evil.md").write_bytes(event("Outside"))
    (day / "good.md").write_bytes(event())
    (day / "README.md").write_text("# Notes\n\nNot an event.\n")  # not an event: ignored, not skipped
    (day / "random.md").write_bytes(bytes(range(256)) * 8)
    (day / "LOUD.MD").write_bytes(event())
    (day / "big.md").write_bytes(event() + b"x" * MAX_FILE)
    (day / "outside.md").symlink_to(outside / "evil.md")
    (day / "inside.md").symlink_to(day / "good.md")
    (day / "loop.md").symlink_to(day / "loop.md")
    (root / "news" / "2017").symlink_to(outside)
    archive = read_archive(root)
    assert list(archive.events) == ["news/2016/03/14/good.md"]
    reasons = {os.path.relpath(s.path, root): s.reason for s in archive.skipped}
    assert reasons == {
        "news/2016/03/14/random.md": "not a text file: invalid UTF-8 at byte 128",
        "news/2016/03/14/LOUD.MD": "its name ends in '.MD', not '.md': rename it to be read",
        "news/2016/03/14/big.md": f"{MAX_FILE + len(event()):,} bytes, more than an event's {MAX_FILE:,}",
        "news/2016/03/14/outside.md": reasons["news/2016/03/14/inside.md"],
        "news/2016/03/14/inside.md": "symlinked file: symlinks are not followed (copy the file into the archive "
        "to read it)",
        "news/2016/03/14/loop.md": "symlink loop or dangling symlink",
        "news/2017": "symlinked folder: symlinks are not followed (copy the folder into the archive to read it)",
    }
    result = CliRunner().invoke(app, ["validate", "--archive", str(root)])
    assert result.exit_code == 0 and result.output.count("  skipped /") == 7, result.output


def test_duplicate_slugs_are_warned(tmp_path):
    for day in ("news/2016/3/14", "news/2016/03/14"):
        (tmp_path / day).mkdir(parents=True)
        (tmp_path / day / "x.md").write_bytes(event())
    archive = read_archive(tmp_path)
    assert len(archive.events) == 2
    assert archive.warnings == [
        "duplicate slug: news/2016/03/14/x.md, news/2016/3/14/x.md differ only in zero padding; a link to any of "
        "them resolves to one"
    ]
    result = CliRunner().invoke(app, ["validate", "--archive", str(tmp_path)])
    assert "warning: duplicate slug: news/2016/03/14/x.md" in result.output
