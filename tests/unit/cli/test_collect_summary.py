"""`collect --once` ends with how the run went: counts per status and the worst results."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from watchkeeper.cli.collect import WORST_SHOWN, print_closing_summary
from watchkeeper.model import CheckResult, Status


def test_many_problems_are_summed_up_worst_first() -> None:
    """Past WORST_SHOWN problems the rest are counted, and errored ranks above critical."""
    results = {f"d{n:02}": CheckResult.of(Status.CRITICAL, f"d{n:02} down", ts=0)
               for n in range(WORST_SHOWN + 2)}
    results["ok1"] = CheckResult.of(Status.OK, ts=0)
    results["broken"] = CheckResult.of(Status.ERRORED, "timed out after 3s", ts=0)
    manager = SimpleNamespace(results={"run1": {"ping": results}})
    out = io.StringIO()
    print_closing_summary(Console(file=out, width=200), manager)
    lines = out.getvalue().splitlines()
    assert lines[0] == "14 results: 1 errored, 12 critical, 1 ok; overall ERRORED"
    assert lines[1] == "  errored broken ping: timed out after 3s"
    assert len(lines) == 1 + WORST_SHOWN + 1
    assert lines[-1] == "  ... and 3 more (above, or --report PATH for the report)"
