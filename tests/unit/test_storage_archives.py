"""Unpacking archives: ordinary ones work, members that would escape the model directory are refused."""

import io
import platform
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from modeldeploy.storage.archives import FILTERS_PYTHON, UnsafeArchive, unpack
from modeldeploy.storage.errors import FetchError

URI = "https://models.example.com/model.tar.gz"
ROOT = Path(__file__).parents[2]
# What Python 3.11.0 to 3.11.3 lack: tarfile's extraction filters and their errors (PEP 706).
PEP_706_NAMES = (
    "data_filter",
    "tar_filter",
    "fully_trusted_filter",
    "FilterError",
    "AbsolutePathError",
    "OutsideDestinationError",
    "AbsoluteLinkError",
    "LinkOutsideDestinationError",
    "SpecialFileError",
)


def tar_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, body in members:
            info.size = len(body) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(body) if info.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def zip_archive(path: Path, members: list[tuple[str, bytes, bool]]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, body, is_link in members:
            info = zipfile.ZipInfo(name)
            if is_link:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, body)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    # The model directory sits two levels down, so that an escape has somewhere to land.
    dest = tmp_path / "volume" / "model"
    dest.mkdir(parents=True)
    return dest


def test_a_tar_archive_unpacks_with_its_tree_and_inner_links(tmp_path: Path, dest: Path) -> None:
    archive = tar_archive(
        tmp_path / "model.tar.gz",
        [
            (member("weights/model.onnx"), b"weights"),
            (member("config.json"), b"{}"),
            (member("latest.onnx", tarfile.SYMTYPE, "weights/model.onnx"), b""),
            (member("copy.onnx", tarfile.LNKTYPE, "weights/model.onnx"), b""),
        ],
    )
    unpack(archive, dest, URI)
    assert (dest / "weights/model.onnx").read_bytes() == b"weights"
    assert (dest / "latest.onnx").read_bytes() == b"weights"
    assert (dest / "copy.onnx").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("evil", "refusal"),
    [
        (member("../escaped.txt"), "'../escaped.txt' would be written outside the model directory"),
        (member("weights/../../escaped.txt"), "would be written outside the model directory"),
        (member("/tmp/escaped.txt"), "'/tmp/escaped.txt' has an absolute path"),
        (member("link", tarfile.SYMTYPE, "../../escaped.txt"), "'link' is a link pointing outside"),
        (member("link", tarfile.SYMTYPE, "/etc/passwd"), "'link' is a link to an absolute path"),
        (member("hard", tarfile.LNKTYPE, "../escaped.txt"), "'hard' is a link pointing outside"),
        (member("fifo", tarfile.FIFOTYPE), "'fifo' is a device or a pipe"),
    ],
)
def test_tar_members_escaping_the_model_directory_are_refused(
    tmp_path: Path, dest: Path, evil: tarfile.TarInfo, refusal: str
) -> None:
    archive = tar_archive(tmp_path / "evil.tar.gz", [(member("config.json"), b"{}"), (evil, b"pwned")])
    with pytest.raises(UnsafeArchive, match=refusal):
        unpack(archive, dest, URI)
    assert not (tmp_path / "volume" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_a_link_then_a_member_through_it_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = tar_archive(
        tmp_path / "evil.tar.gz",
        [(member("up", tarfile.SYMTYPE, ".."), b""), (member("up/escaped.txt"), b"pwned")],
    )
    with pytest.raises(UnsafeArchive):
        unpack(archive, dest, URI)
    assert not (tmp_path / "volume" / "escaped.txt").exists()


def test_a_zip_archive_unpacks_with_inner_links(tmp_path: Path, dest: Path) -> None:
    archive = zip_archive(
        tmp_path / "model.zip",
        [("weights/model.onnx", b"weights", False), ("latest.onnx", b"weights/model.onnx", True)],
    )
    unpack(archive, dest, URI)
    assert (dest / "weights/model.onnx").read_bytes() == b"weights"
    assert (dest / "latest.onnx").is_symlink()
    assert (dest / "latest.onnx").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("evil", "refusal"),
    [
        (("../escaped.txt", b"pwned", False), "'../escaped.txt' would be written outside"),
        (("/tmp/escaped.txt", b"pwned", False), "'/tmp/escaped.txt' has an absolute path"),
        (("C:/escaped.txt", b"pwned", False), "has an absolute path"),
        (("link", b"../../escaped.txt", True), "'link' is a link pointing outside"),
        (("link", b"/etc", True), "'link' is a link pointing outside"),
    ],
)
def test_zip_members_escaping_the_model_directory_are_refused(
    tmp_path: Path, dest: Path, evil: tuple[str, bytes, bool], refusal: str
) -> None:
    archive = zip_archive(tmp_path / "evil.zip", [("config.json", b"{}", False), evil])
    with pytest.raises(UnsafeArchive, match=refusal):
        unpack(archive, dest, URI)
    assert not (tmp_path / "volume" / "escaped.txt").exists()


def test_a_damaged_archive_is_a_clear_error(tmp_path: Path, dest: Path) -> None:
    damaged = tmp_path / "model.tar.gz"
    damaged.write_bytes(b"not gzip at all")
    with pytest.raises(FetchError, match=f"^{URI} is not a valid archive"):
        unpack(damaged, dest, URI)


def test_without_extraction_filters_every_fetch_names_the_python_needed(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights")
    termination = tmp_path / "termination"
    as_on_python_3_11_3 = (
        f"import tarfile\nfor name in {PEP_706_NAMES!r}: delattr(tarfile, name)\n"
        "from modeldeploy.cli import app\napp()"
    )
    fetch = [model.as_uri(), "--dest", str(tmp_path / "dest"), "--termination-log", str(termination)]
    run = subprocess.run(
        [sys.executable, "-c", as_on_python_3_11_3, "fetch-model", "--uri", *fetch],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = (
        f"FetchFailed: fetch-model needs Python {FILTERS_PYTHON} or newer (tarfile extraction filters);"
        f" this is Python {platform.python_version()}"
    )
    assert (run.returncode, run.stderr.splitlines(), termination.read_text()) == (1, [line], line + "\n")


def test_the_package_requires_the_python_with_extraction_filters() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={FILTERS_PYTHON}"
