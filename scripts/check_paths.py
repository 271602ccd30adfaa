#!/usr/bin/env python3
"""Fail when a source, test, benchmark or script file refers to a path outside the repository.

A user clones the repository and nothing else, so nothing may read the development
folders kept beside a developer's clone, or any other place outside it. Three kinds of
reference are caught:

- ``Path(__file__)`` (or ``os.path.dirname(__file__)``) walked up past the repository
  root with ``.parent`` / ``.parents[N]``;
- string literals holding a ``..`` path segment, or an absolute path under a home or
  work directory (``/work/``, ``/home/``, ``/root/``);
- the same in the Makefile and shell scripts, by a plain text search.

A line that must mention such a path for a good reason (a comment about the rule
itself, say) ends with ``# paths: ok``.

Usage: ``scripts/check_paths.py [ROOT]``; exit 1 and one ``file:line: reason`` per finding.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

CHECKED = ("src", "tests", "benchmarks", "scripts")
TEXT_FILES = ("Makefile", ".ci/run")
PRAGMA = "# paths: ok"
# Spelt in pieces so that a plain text search for them finds no false hit in this file.
SHARED_DIR = "/".join(("..", "shared"))
SHARED_DATA = "/".join(("shared", "testdata"))
SELF = {Path("scripts/check_paths.py"), Path("tests/unit/scripts/test_check_paths.py")}
UP_SEGMENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
FOREIGN_ABSOLUTE = re.compile(r"(^|[\s'\"=:])/(work|home|root)/")


def _is_file_dunder(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "__file__"


def _levels_up(node: ast.AST) -> int | None:  # noqa: PLR0911 - one return per form followed
    """How many directories above the file's own folder ``node`` points, if it is derived
    from ``__file__``; None when it is not (or not in a way this check follows)."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "Path" and node.args:
            if _is_file_dunder(node.args[0]):
                return -1  # the file itself: its folder is one .parent away
            return None
        if isinstance(func, ast.Attribute):
            if func.attr in {"resolve", "absolute"}:
                return _levels_up(func.value)
            if func.attr == "dirname" and node.args:  # os.path.dirname(x)
                inner = node.args[0]
                if _is_file_dunder(inner):
                    return 0
                below = _levels_up(inner)
                return None if below is None else below + 1
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        below = _levels_up(node.value)
        return None if below is None else below + 1
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)):
        below = _levels_up(node.value.value)
        return None if below is None else below + 1 + node.slice.value
    return None


def _joins_up(node: ast.AST) -> bool:
    """``base / ".."`` or ``os.path.join(base, "..")``: a step up out of wherever base is."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        operands = [node.left, node.right]
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "join"):
        operands = list(node.args)
    else:
        return False
    return any(isinstance(o, ast.Constant) and o.value == ".." for o in operands)


def _python_findings(path: Path, rel: Path, text: str) -> Iterator[tuple[int, str]]:
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        yield exc.lineno or 1, f"cannot parse: {exc.msg}"
        return
    depth = len(rel.parts) - 1  # folders between the repository root and this file
    reported: set[int] = set()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if line in reported:
            continue
        up = _levels_up(node)
        if up is not None and up > depth:
            reported.add(line)
            yield line, f"walks {up} folders up from {rel}, past the repository root"
        elif _joins_up(node):
            reported.add(line)
            yield line, "joins a '..' segment onto a path"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if "\n" in value:  # a docstring or other prose: check it line by line
                for offset, piece in enumerate(value.splitlines()):
                    reason = _string_reason(piece)
                    if reason and line + offset not in reported:
                        reported.add(line + offset)
                        yield line + offset, reason
            else:
                reason = _string_reason(value)
                if reason:
                    reported.add(line)
                    yield line, reason


def _string_reason(value: str) -> str | None:
    if SHARED_DATA in value or SHARED_DIR in value:
        return f"refers to {SHARED_DIR} ({value.strip()[:60]!r})"
    if FOREIGN_ABSOLUTE.search(value):
        return f"absolute path outside the repository ({value.strip()[:60]!r})"
    if UP_SEGMENT.search(value) and "/" in value and not value.lstrip().startswith(("..", "...")):
        return f"path with a '..' segment ({value.strip()[:60]!r})"
    return None


def _text_findings(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0]
        if "../" in body or FOREIGN_ABSOLUTE.search(body):
            yield number, f"path outside the repository ({line.strip()[:60]!r})"


def findings(root: Path) -> Iterator[str]:
    """One ``file:line: reason`` for each reference to a path outside ``root``."""
    files: list[Path] = []
    for folder in CHECKED:
        base = root / folder
        if base.is_dir():
            files.extend(p for p in sorted(base.rglob("*"))
                         if p.is_file() and "__pycache__" not in p.parts
                         and p.relative_to(root).parts[:2] != ("tests", "data"))
    files.extend(root / name for name in TEXT_FILES if (root / name).is_file())
    for path in files:
        rel = path.relative_to(root)
        if rel in SELF:  # these name the patterns it looks for
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        lines = text.splitlines()
        if path.suffix == ".py":
            found = _python_findings(path, rel, text)
        elif path.suffix in {".sh", ""} or path.name in TEXT_FILES:
            found = _text_findings(text)
        else:
            continue
        for number, reason in found:
            if 0 < number <= len(lines) and lines[number - 1].rstrip().endswith(PRAGMA):
                continue
            yield f"{rel}:{number}: {reason}"


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = list(findings(root))
    for problem in problems:
        print(problem)  # noqa: T201 - a lint tool reports on stdout
    if problems:
        print(f"{len(problems)} reference(s) outside the repository: "  # noqa: T201
              "a lone clone has none of "
              "these; copy the data into tests/data/ (with its origin) instead")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
