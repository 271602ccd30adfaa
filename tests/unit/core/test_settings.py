"""Settings: precedence, defaults, and errors that name file, line, key and value."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.settings import Settings, load_settings, parse_duration, parse_listen

CONFIG = """\
data_dir: /srv/wk
server:
  listen: 0.0.0.0:9000
collectors:
  - name: cpu
    plugin: system
    interval: 15
  - name: web
    plugin: http
    interval: fast
"""


def test_defaults_without_any_source() -> None:
    """With nothing configured, the embedded default watches this machine."""
    settings, _ = load_settings()
    assert settings == Settings()
    assert settings.server.listen == "127.0.0.1:8080"
    assert settings.data_dir == "var"
    assert settings.archive.backend == "embedded"
    assert settings.collectors is None
    assert [e.engine for e in settings.engines] == ["archive_writer", "alarms"]
    assert settings.inventory.devices[0].address == "127.0.0.1"


def test_file_then_env_then_overrides() -> None:
    """Flags beat the environment, which beats the file."""
    text = "data_dir: /from/file\nserver:\n  listen: 10.0.0.1:1\nlog_level: debug\n"
    env = {"WATCHKEEPER_SERVER__LISTEN": "127.0.0.1:7000", "WATCHKEEPER_DATA_DIR": "/from/env",
           "UNRELATED": "x"}
    settings, _ = load_settings(text, source="wk.yaml", env=env,
                                overrides={"data_dir": "/from/flag", "server.listen": None})
    assert settings.data_dir == "/from/flag"
    assert settings.server.listen == "127.0.0.1:7000"
    assert settings.log_level == "debug"


def test_env_values_are_typed_like_yaml() -> None:
    settings, _ = load_settings(env={"WATCHKEEPER_SERVER__PUBLIC_READS": "false"})
    assert settings.server.public_reads is False


def test_bad_value_names_file_line_key_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, source="wk.yaml")
    err = info.value
    assert (err.file, err.line, err.key, err.value) == ("wk.yaml", 10, "collectors[1].interval",
                                                       "fast")
    assert str(err).startswith("wk.yaml:10: collectors[1].interval: Expected `float`")


def test_unknown_key_is_refused_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings("server:\n  listen: 1.2.3.4:5\n  lisen: x\n", source="c.yaml")
    assert info.value.line == 3
    assert info.value.key == "server.lisen"
    assert "unknown setting" in str(info.value)


def test_missing_required_field_points_at_the_item() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings("collectors:\n  - name: x\n", source="c.yaml")
    assert info.value.line == 2
    assert "plugin" in str(info.value)


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"WATCHKEEPER_SCHEDULER__MAX_CONCURRENCY": "many"})
    assert "WATCHKEEPER_SCHEDULER__MAX_CONCURRENCY" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("server: [unclosed\n", 2, "invalid YAML"),
        ("- just\n- a list\n", 1, "top level must be a mapping"),
    ],
)
def test_malformed_yaml(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(text, source="bad.yaml")
    assert info.value.line == line
    assert fragment in str(info.value)


def test_empty_file_means_defaults() -> None:
    assert load_settings("# nothing\n", source="e.yaml")[0] == Settings()


def test_locator_falls_back_to_the_parent_line() -> None:
    _, locator = load_settings(CONFIG.replace("fast", "5"), source="wk.yaml")
    err = locator.error("collectors[0].options.port", "bad port", 0)
    assert (err.line, err.key) == (5, "collectors[0].options.port")
    assert locator.error("nowhere", "x").line is None


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)), (":9", ("127.0.0.1", 9))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8080", "host:port", "h:70000"])
def test_parse_listen_refuses(listen: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(listen)


@pytest.mark.parametrize(
    ("text", "seconds"), [(30, 30.0), ("30", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0)]
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_refuses_garbage() -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration("soon")
