"""Client variables never stop the server; `config check` and `up` read the same sources;
errors name file, line, key and value, never a secret."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from watchkeeper import runtime
from watchkeeper.cli.main import main
from watchkeeper.errors import ConfigError
from watchkeeper.runtime.config import check_config
from watchkeeper.settings import CLIENT_ENV, Settings, load_settings

CLIENT = {"WATCHKEEPER_SERVER": "http://127.0.0.1:9090", "WATCHKEEPER_TOKEN": "s3cret",
          "WATCHKEEPER_URL": "http://old", "WATCHKEEPER_TEST_PG_DSN": "postgresql://x"}


def test_client_variables_are_not_settings() -> None:
    """Exporting what the CLI documents leaves the settings alone (it stopped `up` before)."""
    settings, _ = load_settings(None, env=CLIENT)
    assert settings == Settings()


def test_client_names_cannot_become_settings() -> None:
    """``server`` is a section (set key by key); no setting may take a client's name."""
    fields = {f.name: f for f in msgspec.structs.fields(Settings)}
    assert isinstance(fields["server"].default_factory(), msgspec.Struct)  # type: ignore[misc]
    reserved = {name.removeprefix("WATCHKEEPER_").lower() for name in CLIENT_ENV}
    assert reserved & set(fields) == {"server"}


def test_a_setting_still_comes_from_the_environment() -> None:
    settings, _ = load_settings(None, env={**CLIENT, "WATCHKEEPER_SERVER__LISTEN": "0.0.0.0:1"})
    assert settings.server.listen == "0.0.0.0:1"
    with pytest.raises(ConfigError, match="environment variable WATCHKEEPER_LOG_LEVLE"):
        load_settings(None, env={"WATCHKEEPER_LOG_LEVLE": "debug"})


def test_config_check_and_up_read_the_same_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """config check honours the environment as `up` does: both fail, or both pass."""
    path = tmp_path / "wk.yaml"
    path.write_text(f"data_dir: {tmp_path / 'var'}\n")
    for name, value in CLIENT.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check", str(path)]) == 0
    runtime.read_settings(str(path))  # what `up` reads: no error either
    monkeypatch.setenv("WATCHKEEPER_SCHEDULER__MAX_CONCURRENCY", "lots")
    capsys.readouterr()
    assert main(["config", "check", str(path)]) == 78
    err = capsys.readouterr().err
    assert "WATCHKEEPER_SCHEDULER__MAX_CONCURRENCY" in err
    assert "'lots'" in err
    with pytest.raises(ConfigError, match="MAX_CONCURRENCY"):
        runtime.read_settings(str(path))


def test_check_config_defaults_to_the_environment_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("log_level: debug\n")
    monkeypatch.setenv("WATCHKEEPER_CONFIG", str(path))
    assert str(check_config()).startswith(f"{path}: ok (")
    assert str(check_config(env={})).startswith("defaults: ok (")


def test_listen_errors_name_file_line_and_value() -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings("data_dir: var\nserver:\n  listen: localhost\n", source="wk.yaml")
    assert str(bad.value) == ("wk.yaml:3: server.listen: expected HOST:PORT (e.g. "
                              "127.0.0.1:8080) (value: 'localhost')")
    with pytest.raises(ConfigError, match=r"command-line option for server\.listen"):
        load_settings(None, overrides={"server.listen": "nope"})


@pytest.mark.parametrize("key", ["snmp.community", "ssh.password", "api_key", "token",
                                 "client_secret"])
def test_secret_values_are_redacted(key: str) -> None:
    error = ConfigError("bad", file="wk.yaml", line=3, key=key, value="hunter2")
    assert "hunter2" not in str(error)
    assert str(error) == f"wk.yaml:3: {key}: bad (value: <redacted>)"


def test_values_are_shown_short_and_sections_not_at_all() -> None:
    assert str(ConfigError("bad", key="a.b", value="x" * 200)).endswith("...)")
    assert str(ConfigError("bad", key="a", value={"password": "hunter2"})) == \
        "<settings>: a: bad"
