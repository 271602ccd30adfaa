"""The compatibility classes send exactly the requests esmond-client 4.2.1 sent.

Pure replay against the recording server's answers (MockTransport); the same scenario
runs against the real watchkeeper app in tests/integration/test_esmond_client_app.py.
"""

from __future__ import annotations

from tests.unit.client.esmond_replay import (
    CAPTURED,
    ReplayServer,
    captured_requests,
    comparable,
    lib_scenario,
)


def test_library_scenario_sends_the_captured_requests() -> None:
    server = ReplayServer()
    lib_scenario("http://127.0.0.1:18080", server.transport())
    expected = [comparable(r) for r in captured_requests("lib_query_and_post")]
    assert [comparable(r) for r in server.requests] == expected


def test_library_scenario_prints_what_esmond_printed() -> None:
    out = lib_scenario("http://127.0.0.1:18080", ReplayServer().transport())
    captured = (CAPTURED / "lib_query_and_post.stdout").read_text().splitlines()
    # Python 2 printed u'' strings and dicts in hash order; otherwise the same text.
    expected = [line.replace("u'", "'").replace("{'41.10': 2, '41.00': 98}",
                                                "{'41.00': 98, '41.10': 2}")
                for line in captured]
    assert out == expected
