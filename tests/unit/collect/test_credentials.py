"""Credentials by reference: resolved when asked, never shown."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from watchkeeper.collect.credentials import Credential, is_reference, resolve_credential
from watchkeeper.errors import CollectError

SECRET = "hunter2-sentinel"


def test_env_reference_resolves_from_the_given_environment() -> None:
    cred = resolve_credential("env:WK_PASS", env={"WK_PASS": SECRET})
    assert cred.reveal() == SECRET
    assert cred.source == "env:WK_PASS"


def test_file_reference_reads_the_file_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    assert resolve_credential(f"file:{path}").reveal() == SECRET


def test_plain_text_is_an_inline_value() -> None:
    cred = resolve_credential("public")
    assert (cred.reveal(), cred.source) == ("public", "inline")


def test_a_missing_variable_or_file_names_the_reference(tmp_path: Path) -> None:
    with pytest.raises(CollectError, match="WK_NOPE is not set"):
        resolve_credential("env:WK_NOPE", env={})
    with pytest.raises(CollectError, match="cannot read"):
        resolve_credential(f"file:{tmp_path / 'missing'}")


def test_the_value_never_shows_in_repr_str_format_or_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    cred = resolve_credential("env:WK_PASS", env={"WK_PASS": SECRET})
    shown = [repr(cred), str(cred), f"{cred}", f"{cred}", repr([cred]), repr({"k": cred})]
    assert all(SECRET not in text for text in shown)
    assert repr(cred) == "Credential('env:WK_PASS')"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").debug("using %s / %r", cred, cred)
    assert SECRET not in caplog.text


def test_credentials_are_never_pickled() -> None:
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Credential(SECRET, source="inline"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("env:X", True), ("file:/x", True), ("env:", False), ("public", False), ("file", False)],
)
def test_is_reference(text: str, expected: bool) -> None:
    assert is_reference(text) is expected
