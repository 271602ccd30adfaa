"""The HTML run report at 1,000 devices: worst first, a summary on top, filters, human
units, whole ERRORED reasons, and nothing from a check or a device name rendered as HTML."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from watchkeeper.collect import Collector, PollContext, PollResult
from watchkeeper.collect.manager import Manager
from watchkeeper.collect.report_html import ORDER, render_html, value_text
from watchkeeper.collect.units import human, significant
from watchkeeper.model import Device, Status
from watchkeeper.settings import CollectorSettings

EVIL = "<script>alert('x')</script>&"
REASON = ("the agent answered 'noSuchName' for 1.3.6.1.2.1.2.2.1.10.7 after 3 retries\n"
          "  while walking ifTable on port 161 " + "with a long explanation " * 8)


def status_of(index: int) -> Status:
    if index % 97 == 0:
        return Status.ERRORED
    if index % 13 == 0:
        return Status.CRITICAL
    if index % 7 == 0:
        return Status.WARNING
    return Status.OK


class Mixed(Collector):
    """A status per device number; measurements in bytes, ms, % and a count; the ERRORED
    ones raise with a long, two-line reason."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        shift: int = 0

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        index = int(device.address.rsplit(".", 1)[-1]) + self.options.shift
        status = status_of(index)
        if status is Status.ERRORED:
            raise RuntimeError(REASON)
        measurements = [ctx.measure("mem.used", 23607435264.0, unit="B"),
                        ctx.measure("rtt", 149.92183399999703, unit="ms"),
                        ctx.measure("cpu", 87.456, unit="%"),
                        ctx.measure("packets", 1234567.0)]
        if self.options.shift == 1:  # one collector with many measurements per device
            measurements += [ctx.measure("if.in", float(i), unit="bit/s", labels={"if": str(i)})
                             for i in range(12)]
        return ctx.result(measurements, status, f"{device.name} is {status.value}")


def devices(count: int) -> list[Device]:
    made = [Device(name=f"dev{i:04d}", address=f"10.0.{i // 250}.{i % 250 + 1}")
            for i in range(count - 1)]
    return [*made, Device(name=EVIL, address="10.9.9.1")]


def spec(name: str, shift: int) -> CollectorSettings:
    return CollectorSettings(name=name, plugin=f"{__name__}:Mixed", devices=["*"],
                             options={"shift": shift}, timeout=5.0)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    """1,000 devices x 3 collectors, as ``collect --once --report`` writes them."""
    import asyncio

    async def run() -> tuple[list[Path], dict[str, object]]:
        config = [spec("snmp", 0), spec("ping", 1), spec("http", 3)]
        async with Manager(devices(1000), config, max_concurrency=256) as manager:
            await manager.run("now")
            out = tmp_path_factory.mktemp("report") / "report.yaml"
            return manager.finalize_report(out), manager.report()

    paths, data = asyncio.run(run())
    return paths[1].read_text(encoding="utf-8"), data


def row_statuses(html: str) -> list[str]:
    return re.findall(r"<tr class='r s-(\w+)'", html)


def test_rows_are_worst_first(page: tuple[str, dict[str, object]]) -> None:
    """One compact row per device and collector, errored, critical, warning, then ok."""
    html, _ = page
    statuses = row_statuses(html)
    assert len(statuses) == 3000
    ranks = [ORDER.index(s) for s in statuses]
    assert ranks == sorted(ranks)
    assert statuses[0] == "errored"
    assert html.count("<table>") == 3  # worst, per collector, the run: not a block per result


def test_the_summary_counts_each_status(page: tuple[str, dict[str, object]]) -> None:
    """The chips on top count each status as the data does, and problems as all but ok."""
    html, data = page
    counts = data["counts"]
    assert isinstance(counts, dict)
    assert Counter(row_statuses(html)) == counts
    for status, count in counts.items():
        assert f"{status}</span> {count:,}</label>" in html
    problems = sum(counts.values()) - counts["ok"]
    assert f"problems {problems:,}</label>" in html
    assert "id='show-problems' checked" in html  # problems only, until asked for more
    summary = html[html.index("worst results"):html.index("per collector")]
    assert summary.count("<tr>") == 1 + 15  # a header and the 15 worst
    assert f"and {problems - 15:,} more below" in summary


def test_measurements_are_in_human_units(page: tuple[str, dict[str, object]]) -> None:
    """No raw floats: bytes in GiB, ms to 3 digits, percentages, counts with commas; the
    series name without the device and collector that the row already shows."""
    html, _ = page
    assert "<i>mem.used</i> 22 GiB" in html
    assert "<i>rtt</i> 150 ms" in html
    assert "<i>cpu</i> 87.5 %" in html
    assert "<i>packets</i> 1,234,567" in html
    assert "23607435264" not in html
    assert "149.9218" not in html
    assert "12 more</summary>" in html  # 16 measurements: 4 inline, the rest one click away


def test_errored_rows_carry_the_whole_reason(page: tuple[str, dict[str, object]]) -> None:
    """The full two-line reason, escaped, in the row (and its first line in the summary)."""
    html, _ = page
    from html import escape

    whole = escape(f"RuntimeError: {REASON}", quote=True)
    assert f"<pre class=msg>{whole}</pre>" in html
    assert escape(REASON.splitlines()[0][:100], quote=True) in html


def test_names_and_messages_are_escaped(page: tuple[str, dict[str, object]]) -> None:
    """A device named like a script is text everywhere, in cells and in data- attributes;
    the only script is the report's own."""
    html, _ = page
    assert EVIL not in html
    assert html.count("<script>") == 1
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    assert "data-device='&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;'" in html
    assert len(html) < 3_000_000


def test_filters_work_without_script() -> None:
    """Radio buttons and CSS choose the rows; the script only adds collector and device."""
    html = render_html({"status": "ok", "generated": "t", "counts": {}, "devices": {},
                        "plugins": {}, "runs": {}})
    assert "#show-problems:checked~* tr.s-ok{display:none}" in html
    assert "#show-critical:checked~* tr.r:not(.s-critical){display:none}" in html
    assert "<p id='tools' hidden>" in html  # shown by the script, never without it
    assert "every check is OK" in html


@pytest.mark.parametrize(("value", "unit", "text"), [
    (23607435264.0, "B", "22 GiB"), (1023, "B", "1,023 B"), (1024, "B", "1 KiB"),
    (149.92183399999703, "ms", "150 ms"), (1999.5, "ms", "2 s"), (0.000512, "s", "512 µs"),
    (5400, "s", "1.5 h"), (3e-10, "s", "0.3 ns"), (0, "s", "0 s"), (12.3456, "d", "12.3 d"),
    (9.4e9, "bit/s", "9.4 Gbit/s"), (87.456, "%", "87.5 %"), (100.0, "%", "100 %"),
    (0.1234, "%", "0.123 %"), (1234567, "", "1,234,567"), (3.14159, "", "3.14"),
    (1.5, "/s", "1.5 /s"), (-5.5, "ms", "-5.5 ms"), (2.0, "ms", "2 ms"),
    (float("inf"), "ms", "inf s"),
])
def test_human_units(value: float, unit: str, text: str) -> None:
    """Binary prefixes for bytes, decimal for bits, time across µs..d, 3 digits."""
    assert human(value, unit) == text


def test_value_text_of_other_kinds() -> None:
    """Histograms by their size, objects as short text, booleans as words."""
    assert value_text({"1": 3, "2": 4}, "ms") == "histogram: 2 buckets, 7 samples"
    assert value_text(True, "") == "true"
    assert value_text(float("nan"), "ms") == "nan"
    assert value_text({"a": "b"}, "") == '{"a": "b"}'
    assert value_text("x" * 100, "").endswith("…")
    assert significant(0.0) == "0"
    assert significant(float("nan")) == "nan"


class Shapes(Collector):
    """A histogram and a JSON object beside a number."""

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        key = ctx.measure("x", 1.0).key
        from watchkeeper.model import Measurement, SeriesKey

        trace = Measurement(key=SeriesKey.make(device.name, ctx.plugin, "trace"), ts=ctx.now,
                            obj={"hops": [1, 2]})
        return ctx.result([ctx.measure("rtt", histogram={"1": 3, "2": 4}, unit="ms"), trace,
                           ctx.measure("x", 1.0, unit="d")], Status.OK, str(key))


async def test_histograms_and_objects_reach_the_report(tmp_path: Path) -> None:
    """Every kind of measurement is in the data file and readable on the page."""
    config = [CollectorSettings(name="shapes", plugin=f"{__name__}:Shapes", devices=["*"],
                                timeout=5.0)]
    async with Manager([Device(name="r1", address="127.0.0.1")], config) as manager:
        await manager.run("now")
        data, page = manager.finalize_report(tmp_path / "r.json")
    values = [m["value"] for m in
              msgspec.json.decode(data.read_bytes())["runs"]["now"]["results"]["shapes"]["r1"][
                  "measurements"]]
    assert values == [{"1": 3, "2": 4}, {"hops": [1, 2]}, 1.0]
    html = page.read_text()
    assert "<i>rtt</i> histogram: 2 buckets, 7 samples" in html
    assert "<i>trace</i> {&quot;hops&quot;: [1, 2]}" in html
    assert "<i>x</i> 1 d" in html
    assert "show: <label for='show-problems'>problems 0</label>" in html
