"""Connections for shared engine state: DSNs in messages, bad schemas, unreachable servers."""

from __future__ import annotations

import msgspec
import pytest

from watchkeeper.errors import PipelineError
from watchkeeper.pipeline.engines.alarms import AlarmOptions
from watchkeeper.pipeline.engines.alarms.pgstore import PostgresStore
from watchkeeper.pipeline.pgconnect import PgConnection, redact_dsn


def test_passwords_stay_out_of_dsn_messages() -> None:
    assert "secret" not in redact_dsn("host=db user=wk password=secret dbname=wk")
    assert "***" in redact_dsn("postgresql://wk:secret@db/wk")
    assert redact_dsn("host=db dbname=wk") == "dbname=wk host=db"
    assert redact_dsn("=nonsense") == "<dsn>"


def test_a_schema_must_be_a_plain_identifier() -> None:
    with pytest.raises(PipelineError, match=r"schema 'a; drop' for alarm store x"):
        PgConnection("host=db", schema="a; drop", purpose="alarm store x", ddl="")


def test_an_unreachable_server_is_named_without_its_password() -> None:
    """Nothing is opened before first use; then the error names the server, not the secret."""
    store = PostgresStore("host=127.0.0.1 port=1 user=wk password=secret connect_timeout=2",
                          "alarms", 4, dedup_window=10)
    with pytest.raises(PipelineError, match=r"alarm store alarms: cannot use PostgreSQL at "
                                            r".*port=1") as caught:
        store.version(0)
    assert "secret" not in str(caught.value)
    store.close()


def test_the_postgres_store_needs_a_dsn() -> None:
    with pytest.raises(msgspec.ValidationError, match="store: postgres needs a dsn"):
        msgspec.convert({"store": "postgres"}, AlarmOptions)
    assert msgspec.convert({"store": "postgres", "dsn": "host=db"}, AlarmOptions).schema == (
        "watchkeeper")
