"""Pure parts of the system and tcp collectors: thresholds, CPU arithmetic, options."""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import pytest

from watchkeeper.collect.builtin.system import SystemOptions, cpu_busy_percent, grade
from watchkeeper.collect.builtin.tcp import TcpOptions
from watchkeeper.model import Status


class Times(NamedTuple):  # the shape of psutil.cpu_times() on Linux, trimmed
    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    guest: float = 0.0
    guest_nice: float = 0.0


@pytest.mark.parametrize(
    ("value", "status"),
    [(10.0, Status.OK), (89.9, Status.OK), (90.0, Status.WARNING), (97.9, Status.WARNING),
     (98.0, Status.CRITICAL), (100.0, Status.CRITICAL)],
)
def test_grade_uses_warning_and_critical_thresholds(value: float, status: Status) -> None:
    assert grade(value, 90.0, 98.0) is status


def test_cpu_percent_is_busy_time_over_elapsed_time() -> None:
    before = Times(user=100, nice=0, system=50, idle=800, iowait=50)
    after = Times(user=130, nice=0, system=60, idle=850, iowait=60)  # 40 busy of 100
    assert cpu_busy_percent(before, after) == pytest.approx(40.0)


def test_guest_time_is_not_counted_twice() -> None:
    before = Times(user=100, nice=0, system=0, idle=100, iowait=0, guest=50)
    after = Times(user=150, nice=0, system=0, idle=150, iowait=0, guest=100)
    assert cpu_busy_percent(before, after) == pytest.approx(50.0)


def test_no_elapsed_time_gives_no_cpu_figure() -> None:
    same = Times(1, 0, 1, 1, 0)
    assert cpu_busy_percent(same, same) is None


def test_system_options_have_sane_defaults_and_refuse_unknown_keys() -> None:
    opts = msgspec.convert({"mounts": ["/", "/var"]}, SystemOptions)
    assert opts.mounts == ("/", "/var")
    assert (opts.cpu_warn, opts.cpu_crit, opts.disk_warn, opts.disk_crit) == (90, 98, 90, 95)
    with pytest.raises(msgspec.ValidationError, match="cpu_warning"):
        msgspec.convert({"cpu_warning": 80}, SystemOptions)


def test_tcp_needs_a_port() -> None:
    assert msgspec.convert({"port": 22}, TcpOptions) == TcpOptions(port=22, host="")
    with pytest.raises(msgspec.ValidationError, match="port"):
        msgspec.convert({}, TcpOptions)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"port": 22, "timeout": 3}, TcpOptions)
