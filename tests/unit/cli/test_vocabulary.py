"""One vocabulary for watchkeeper's own commands (docs/cli.md), and help on every option."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from watchkeeper.cli import archive_options
from watchkeeper.cli.archive import TOOLS
from watchkeeper.cli.main import build_parser, main
from watchkeeper.cli.options import Parser, duration, moment, window


def commands(parser: argparse.ArgumentParser,
             path: str = "watchkeeper") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``parser``, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")


def visible_options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.help != argparse.SUPPRESS and not isinstance(
                action, (argparse._SubParsersAction, argparse._HelpAction)):
            yield action


def test_every_option_says_what_it_does() -> None:
    """No option or argument of any command is without a help line."""
    missing = [f"{path}: {action.option_strings or action.dest}"
               for path, parser in commands(build_parser())
               for action in visible_options(parser) if not action.help]
    assert missing == []


def test_no_short_letter_means_two_things() -> None:
    """Across all of watchkeeper's own commands, a short flag has one long name."""
    meaning: dict[str, set[str]] = {}
    for _, parser in commands(build_parser()):
        for action in visible_options(parser):
            shorts = [o for o in action.option_strings if not o.startswith("--")]
            longs = [o for o in action.option_strings if o.startswith("--")]
            for short in shorts:
                meaning.setdefault(short, set()).update(longs[:1])
    assert {s: m for s, m in meaning.items() if len(m) > 1} == {}
    assert meaning["-o"] == {"--output"}
    assert meaning["-c"] == {"--config"}
    assert meaning.get("-f", {"--file"}) == {"--file"}


@pytest.mark.parametrize("old", ["--url", "--data", "--format", "--ssl-verify",
                                 "--output-format", "--key", "--start-time"])
def test_old_names_are_not_offered(old: str) -> None:
    """The renamed flags are gone from help (some stay as hidden aliases)."""
    offered = {o for _, parser in commands(build_parser())
               for action in visible_options(parser) for o in action.option_strings}
    assert old not in offered


def test_the_shared_flags_are_spelled_one_way() -> None:
    """Every command that talks to the API takes --server, --insecure and -o/--output."""
    for path, parser in commands(build_parser()):
        names = {o for a in visible_options(parser) for o in a.option_strings}
        if "--server" in names and not path.startswith("watchkeeper collect"):
            assert {"--insecure", "--output"} <= names or "--token" in names, path
        if "--output" in names:
            (action,) = [a for a in parser._actions if "--output" in a.option_strings]
            assert tuple(action.choices or ()) == ("table", "csv", "json"), path


def test_one_time_grammar() -> None:
    """--since/--step take 300, 5m, 2h; --start/--end take epoch, ISO or a duration ago."""
    assert duration("300") == 300.0
    assert duration("5m") == 300.0
    assert duration("2h") == 7200.0
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        duration("soon")
    with pytest.raises(argparse.ArgumentTypeError, match="more than 0"):
        duration("0")
    assert moment("1700000000") == 1_700_000_000.0
    assert moment("2023-11-14T22:13:20Z") == 1_700_000_000.0
    with pytest.raises(argparse.ArgumentTypeError):
        moment("someday")
    args = build_parser().parse_args(["query", "a/b/c", "--since", "5m", "--step", "5m"])
    assert args.step == 300.0
    start, end = window(args, now=1000.0)
    assert (start, end) == (700.0, None)
    args = build_parser().parse_args(["query", "a/b/c", "--start", "100", "--end", "200"])
    assert window(args, now=1000.0) == (100.0, 200.0)


def test_usage_errors_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad command lines exit 64 (sysexits' EX_USAGE), never 2 (CRITICAL of collect)."""
    with pytest.raises(SystemExit) as bad:
        main(["query", "a/b/c", "--step", "soon"])
    assert bad.value.code == 64
    assert "not a duration" in capsys.readouterr().err
    assert main(["query", "a/b/c", "--agg", "max"]) == 64
    assert "--agg needs --step" in capsys.readouterr().err
    assert main(["alarms", "ack"]) == 64
    assert "KEY is required" in capsys.readouterr().err
    assert main(["alarms", "snooze", "resource/a/b"]) == 64
    assert "--duration is required" in capsys.readouterr().err


def test_parser_error_exit_code() -> None:
    parser = Parser(prog="x")
    parser.add_argument("--n", type=int, help="a number")
    with pytest.raises(SystemExit) as bad:
        parser.parse_args(["--n", "x"])
    assert bad.value.code == 64


def test_deprecated_aliases_still_parse() -> None:
    """--format and --data keep working, hidden, for old scripts."""
    args = build_parser().parse_args(["series", "--format", "human"])
    from watchkeeper.cli.options import output_of

    assert output_of(args) == "table"
    args = build_parser().parse_args(["up", "--data", "/tmp/x"])
    assert args.data_dir == "/tmp/x"


def test_archive_follows_the_vocabulary_and_esmond_ps_keeps_esmond() -> None:
    """`watchkeeper archive` takes --server and verifies TLS; esmond-ps-* keep -u/--url and
    --ssl-verify (off by default), as esmond's tools."""
    for name, tool in TOOLS.items():
        native = Parser(prog=name)
        tool.options(native)
        esmond = argparse.ArgumentParser(prog=name)
        tool.esmond_options(esmond)
        native_flags = {o for a in native._actions for o in a.option_strings}
        esmond_flags = {o for a in esmond._actions for o in a.option_strings}
        assert "--server" in native_flags, name
        assert "--url" in esmond_flags, name
        assert "--url" not in native_flags, name
    get = Parser(prog="get")
    TOOLS["get"].options(get)
    args = get.parse_args(["--server", "https://ma.example.net"])
    archive_options.resolve(args)
    assert (args.url, args.ssl_verify) == ("https://ma.example.net", True)
    args = get.parse_args(["--insecure"])
    archive_options.resolve(args)
    assert args.ssl_verify is False
    esmond = argparse.ArgumentParser(prog="esmond-ps-get")
    TOOLS["get"].esmond_options(esmond)
    assert esmond.parse_args(["-u", "https://x"]).ssl_verify is False


def test_archive_loaders_take_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEPER_TOKEN", "from-env")
    monkeypatch.setenv("WATCHKEEPER_SERVER", "http://wk.example:8080")
    pipe = Parser(prog="pipe")
    TOOLS["pipe"].options(pipe)
    args = pipe.parse_args([])
    archive_options.resolve(args)
    assert (args.url, args.key, args.script_alias) == ("http://wk.example:8080", "from-env",
                                                       "/esmond")
    args = pipe.parse_args(["--token", "flag"])
    archive_options.resolve(args)
    assert args.key == "flag"


def test_the_old_server_variable_is_named_when_set(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """WATCHKEEPER_URL is no longer read; a stale export is told so, not silently ignored."""
    monkeypatch.setenv("WATCHKEEPER_URL", "http://old:8080")
    monkeypatch.delenv("WATCHKEEPER_SERVER", raising=False)
    assert main(["alarms", "ack"]) == 64
    assert "WATCHKEEPER_URL is no longer read; use WATCHKEEPER_SERVER" in capsys.readouterr().err


def test_archive_usage_errors_take_the_cli_codes() -> None:
    """`watchkeeper archive` exits 64 on a bad command line (esmond-ps-* keep esmond's 2),
    and names watchkeeper's flags; --summary-window takes durations."""
    import io

    from watchkeeper.cli.archive import run_tool
    from watchkeeper.cli.archive_query import Context

    err = io.StringIO()
    code = run_tool("get", ["--server", "ftp://x", "--event-type", "throughput"],
                    Context(stdout=io.StringIO(), stderr=err), compat=False)
    assert code == 64
    assert err.getvalue() == "watchkeeper archive get: --server 'ftp://x' is not an http(s) URL\n"
    err = io.StringIO()
    assert run_tool("get", ["-u", "ftp://x"], Context(stdout=io.StringIO(), stderr=err)) == 2
    assert "--url 'ftp://x'" in err.getvalue()
    get = Parser(prog="get")
    TOOLS["get"].options(get)
    assert get.parse_args(["--summary-window", "1d"]).summary_window == 86400
