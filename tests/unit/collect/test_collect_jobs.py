"""What the scheduler shows of its jobs (``Scheduler.job_states``) and the report built from
it (``LatestResults.of_jobs``): on a FakeClock, against the slots the scheduler computes."""

from __future__ import annotations

import msgspec

from tests.unit.collect.fakes import START, Echo, Gated, MakeScheduler, job, settle
from tests.unit.collect.test_collect_scheduler import Boom, grid, step_to
from watchkeeper.clock import FakeClock
from watchkeeper.collect.abc import JobBoard, JobSpec, JobState
from watchkeeper.collect.manager import LatestResults
from watchkeeper.collect.scheduler import Job
from watchkeeper.model import Device, Status


def every_state(board: JobBoard) -> list[JobState]:
    return board.job_states(key[2] for key in board.job_keys())


def by_id(board: JobBoard) -> dict[str, JobState]:
    return {state.job_id: state for state in every_state(board)}


async def test_a_new_job_shows_its_first_slot_and_no_run(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,), device="web1"),
                         job(Echo("other"), "other:a", (60.0, 300.0), device="db1")])
    states = by_id(scheduler)
    assert set(states) == {"echo:a", "other:a"}
    echo = states["echo:a"]
    assert (echo.device, echo.collector, echo.intervals) == ("web1", "echo", (10.0,))
    assert echo.next_run == grid("echo:a", 10, START, START + 10)[0]
    assert (echo.running, echo.skipped, echo.failures, echo.last) == (False, 0, 0, None)
    assert states["other:a"].intervals == (60.0, 300.0)
    assert states["other:a"].next_run == grid("other:a", 60, START, START + 60)[0]


async def test_after_polls_the_latest_run_and_the_next_slot(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,))])
    await clock.advance(25)
    await settle()
    slots = grid("echo:a", 10, START, START + 35)
    done = [s for s in slots if s <= START + 25]
    state = by_id(scheduler)["echo:a"]
    assert state.last is not None
    assert state.last.scheduled == done[-1]
    assert state.last.started == state.last.finished == done[-1]  # the fake clock stood still
    assert state.last.lateness == 0.0
    assert state.last.result.status is Status.OK
    assert [str(m.key) for m in state.last.result.measurements] == ["d1/echo/value"]
    assert state.next_run == slots[len(done)]


async def test_a_running_poll_and_the_slots_it_skipped(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    gated = Gated()
    scheduler = make_scheduler()
    scheduler.reconcile([job(gated, "gated:a", timeout=60), job(Echo(), "echo:b", device="d2")])
    await clock.advance(45)
    slots = grid("gated:a", 10, START, START + 45)
    states = by_id(scheduler)
    assert states["gated:a"].running
    assert states["gated:a"].skipped == len(slots) - 1
    assert states["gated:a"].last is None  # still in its first poll
    assert (states["echo:b"].running, states["echo:b"].skipped) == (False, 0)
    gated.release_all()
    await settle()
    after = by_id(scheduler)["gated:a"]
    assert not after.running
    assert after.last is not None
    assert after.last.scheduled == slots[0]


async def test_an_errored_job_shows_its_reason_failures_and_retry(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler(retry_backoff=(5.0, 40.0))
    scheduler.reconcile([job(Boom(), "boom:a", (3600.0,))])
    t0 = grid("boom:a", 3600, START, START + 3600)[0]
    await step_to(clock, t0 + 6)
    await settle()
    state = by_id(scheduler)["boom:a"]
    assert state.failures == 2  # at t0 and t0 + 5
    assert state.last is not None
    assert state.last.result.status is Status.ERRORED
    assert "down" in state.last.result.check.summary
    assert state.next_run == t0 + 5 + 10  # the retry, long before the next hourly slot


async def test_the_keys_name_device_collector_job_and_latest_status(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler(retry_backoff=(5.0, 40.0))
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,), device="web1"),
                         job(Boom(), "boom:a", (3600.0,), device="db1")])
    assert sorted(scheduler.job_keys()) == [("db1", "boom", "boom:a", None),
                                            ("web1", "echo", "echo:a", None)]
    await step_to(clock, grid("boom:a", 3600, START, START + 3600)[0] + 1)
    await settle()
    assert sorted(scheduler.job_keys()) == [("db1", "boom", "boom:a", Status.ERRORED),
                                            ("web1", "echo", "echo:a", Status.OK)]
    assert [s.job_id for s in scheduler.job_states(["echo:a", "gone:x", "boom:a"])] == [
        "echo:a", "boom:a"]  # in the order asked, unknown ids left out


async def test_a_removed_job_leaves_the_listing(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    keep, drop = job(Echo(), "echo:a"), job(Echo(), "echo:b", device="d2")
    scheduler.reconcile([keep, drop])
    await clock.advance(15)
    await settle()
    scheduler.reconcile([keep])
    assert set(by_id(scheduler)) == {"echo:a"}


async def test_a_state_names_the_device_and_carries_none_of_its_connections(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    device = Device(name="core1", address="127.0.0.1",
                    connections={"snmp": {"community": "s3cret-community"}})
    scheduler = make_scheduler()
    scheduler.reconcile([Job(Echo(), JobSpec(job_id="echo:core1", device=device,
                                             intervals=(10.0,)), 5.0)])
    await clock.advance(15)
    await settle()
    [state] = every_state(scheduler)
    assert state.device == "core1"
    assert b"s3cret" not in msgspec.json.encode(state)


async def test_the_report_of_jobs_merges_each_device_and_collector(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    """Two jobs of one collector on one device are one result, as in every report; a job
    not polled yet is left out; ``generated`` is the time given."""
    echo = Echo()
    scheduler = make_scheduler()
    polled = [job(echo, "echo:a", device="web1"), job(echo, "echo:a2", device="web1"),
              job(Boom(), "boom:a", (3600.0,), device="web1")]
    scheduler.reconcile(polled)
    await step_to(clock, grid("boom:a", 3600, START, START + 3600)[0] + 1)
    await settle()
    scheduler.reconcile([*polled, job(Echo("late"), "late:a", device="db1")])  # not yet polled
    states = every_state(scheduler)
    report = LatestResults.of_jobs(states).report(now=START + 21)
    assert report["generated"] == "2023-11-14T22:13:41.000Z"
    assert report["status"] == "errored"
    assert report["devices"] == {"web1": "errored"}
    assert report["plugins"] == {"boom": "errored", "echo": "ok"}
    results = report["runs"]["latest"]["results"]
    assert set(results) == {"boom", "echo"}
    assert [m["series"] for m in results["echo"]["web1"]["measurements"]] \
        == ["web1/echo/value", "web1/echo/value"]
    assert "down" in results["boom"]["web1"]["messages"][0]["text"]
    assert LatestResults.of_jobs([s for s in states if s.collector == "late"]).report(
        now=START)["runs"] == {}
