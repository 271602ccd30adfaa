"""esmond-ps-get-bulk tells a person how far it is: overall progress on a terminal, plain
final lines, nothing animated when not on a terminal, and an output directory it creates
or a message saying exactly what to do."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx

from tests.integration.esmond_client_app import LiveEsmond
from tests.integration.test_esmond_tools_bulk import NAME, live  # noqa: F401 - the fixture
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SPINNERS = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⣾⣽⣻⢿⡿⣟⣯⣷|/-\\◐◓◑◒")


class Terminal(io.StringIO):
    """stderr as a terminal: Rich draws its live display here."""

    def isatty(self) -> bool:
        return True


def bulk(live: LiveEsmond, outdir: Path, err: io.StringIO, *extra: str,  # noqa: F811
         compat: bool = True) -> int:
    flag = "-D" if compat else "--output-dir"
    argv = ["-u" if compat else "--server", live.url, "-I" if compat else "--ip",
            "-S" if compat else "--start", "2014-04-30", "-E" if compat else "--end",
            "2014-05-02", flag, str(outdir), "--page-size", "1000", "-o", "csv", *extra]
    return run_tool("get-bulk", argv, Context(stdout=io.StringIO(), stderr=err,
                                              transport=live.transport()), compat=compat)


def final_lines(text: str) -> list[str]:
    """What stays on the screen: a tiny terminal for the sequences Rich's live display
    writes (carriage return, newline, erase line, cursor up; colours ignored)."""
    screen: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|.|\n", text, flags=re.DOTALL):
        if token == "\n":
            row, col = row + 1, 0
            screen.extend([] for _ in range(row + 1 - len(screen)))
        elif token == "\r":
            col = 0
        elif token == "\x1b[2K":
            screen[row] = []
        elif token.startswith("\x1b[") and token.endswith("A"):
            row = max(0, row - int(token[2:-1] or 1))
        elif not token.startswith("\x1b["):
            line = screen[row]
            line.extend(" " for _ in range(col + 1 - len(line)))
            line[col] = token
            col += 1
    return [text for text in ("".join(line).rstrip() for line in screen) if text]


def test_a_terminal_gets_overall_progress_and_plain_final_lines(
        live: LiveEsmond, tmp_path: Path) -> None:  # noqa: F811
    """The bar counts files of all and points; when done, each file has one plain line
    and a summary ends the output: no spinner glyph anywhere, no bar left behind."""
    err = Terminal()
    assert bulk(live, tmp_path / "out", err) == 0
    text = err.getvalue()
    assert not SPINNERS & set(ANSI.sub("", text)) - set("-/|\\")  # no braille spinner frames
    lines = final_lines(text)
    assert f"{NAME}.csv: written (5,000 points)" in lines
    assert any(line.endswith("(1 points)") and "packet-trace" in line for line in lines)
    assert re.fullmatch(r"2 files \(2 written\), 5,001 points in \S+out, \d+\.\d s",
                        lines[-1])
    assert all("━" not in line for line in lines)  # the bar is gone at the end
    assert len(lines) == 3


def test_no_terminal_no_display(live: LiveEsmond, tmp_path: Path) -> None:  # noqa: F811
    """Piped or in cron: not one escape sequence or spinner frame on stderr."""
    err = io.StringIO()
    assert bulk(live, tmp_path / "out", err) == 0
    assert "\x1b[" not in err.getvalue()
    assert not SPINNERS & set(err.getvalue()) - set("-/|\\")


def test_the_output_directory_is_created(live: LiveEsmond, tmp_path: Path) -> None:  # noqa: F811
    """A missing directory (and its parents) is made, as `mkdir -p` would."""
    outdir = tmp_path / "new" / "export"
    assert bulk(live, outdir, io.StringIO()) == 0
    assert (outdir / f"{NAME}.csv").exists()


def test_an_output_path_that_cannot_be_a_directory_says_what_to_do(
        live: LiveEsmond, tmp_path: Path) -> None:  # noqa: F811
    """A file in the way, or a parent that is a file: the path, why, and which flag."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = io.StringIO()
    assert bulk(live, blocker, err) == 2
    expected = f"output path {blocker} is a file, not a directory: choose a directory with -D"
    assert expected in err.getvalue()
    err = io.StringIO()
    assert bulk(live, blocker / "sub", err, compat=False) != 0
    assert f"cannot create the output directory {blocker / 'sub'}" in err.getvalue()
    assert "mkdir -p" in err.getvalue()
    assert "--output-dir DIR" in err.getvalue()


def test_transport_is_untouched_by_progress(live: LiveEsmond, tmp_path: Path) -> None:  # noqa: F811
    """Counting the files first costs no extra request: one metadata query, as before,
    then the pages one by one."""
    seen: list[str] = []

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            return live.transport().handle_request(request)

    ctx = Context(stdout=io.StringIO(), stderr=io.StringIO(), transport=Recording())
    argv = ["-u", live.url, "-I", "-S", "2014-04-30", "-E", "2014-05-02", "-D",
            str(tmp_path), "--page-size", "1000", "-o", "csv"]
    assert run_tool("get-bulk", argv, ctx) == 0
    assert sum(1 for path in seen if path.endswith("/archive/")) == 1
    pages = [i for i, path in enumerate(seen) if path.endswith("/throughput/base")]
    assert len(pages) >= 5  # 1,000 points per request
