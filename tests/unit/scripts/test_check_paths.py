"""scripts/check_paths.py: `make lint` fails on any reference to a path outside the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "check_paths.py"
UP = ".."  # kept apart from the folder names so a text search finds no real reference here


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True,
                          text=True, check=False, timeout=60)


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_repository_itself_refers_to_nothing_outside() -> None:
    """The check passes on this checkout: what a lone clone holds is all the code reads."""
    result = run(REPO)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("rel", "line"), [
    ("tests/unit/t.py", 'X = Path(__file__).resolve().parents[3] / "data"'),
    ("tests/unit/t.py", "X = Path(__file__).parent.parent.parent.parent"),
    ("benchmarks/b.py", 'X = Path(__file__).parents[2] / "x"'),
    ("src/pkg/m.py",
     "X = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))"),
    ("src/m.py", 'X = os.path.join(HERE, "..", "x")'),
    ("tests/t.py", f'X = "{UP}/shared/testdata/esmond"'),
    ("tests/t.py", 'X = REPO / ".." / "other"'),
    ("src/m.py", 'X = "/work/shared/reference"'),
    ("scripts/run.sh", f"cp {UP}/shared/x ."),
])
def test_each_kind_of_outside_reference_fails(tmp_path: Path, rel: str, line: str) -> None:
    """Walking up past the root, '..' segments and foreign absolute paths are each caught,
    with the file and line named."""
    write(tmp_path, rel, f"from pathlib import Path\nimport os\n{line}\n")
    result = run(tmp_path)
    assert result.returncode == 1
    assert f"{rel}:3:" in result.stdout


@pytest.mark.parametrize("line", [
    'X = Path(__file__).resolve().parents[2] / "data"',   # tests/unit/t.py -> the root itself
    'X = Path(__file__).parent / "fixtures"',
    'X = "a/b/c.txt"',
    f'X = "see {UP}/shared for the seeds"  # paths: ok',
])
def test_paths_inside_the_repository_pass(tmp_path: Path, line: str) -> None:
    """References that stay inside the clone, and lines marked `# paths: ok`, pass."""
    write(tmp_path, "tests/unit/t.py", f"from pathlib import Path\n{line}\n")
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout
