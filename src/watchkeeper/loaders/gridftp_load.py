"""Load a GridFTP log into an archive, resuming exactly where the last run stopped.

Each complete line is consumed once: parsed (:mod:`.gridftp`), its writes sent, and only
then the position advanced and saved (:mod:`.state`). A line the parser refuses, or the
server rejects with 400, is counted and reported, never retried forever and never a
reason to skip its neighbours. An unreachable server, a refused token or a server error
stops the run with the position at the last line fully loaded, so the next run retries
it. A line still being written (no newline yet) is left for the next run. A point the
archive already has (409) counts as loaded: a run interrupted between two writes of one
record repeats it harmlessly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchkeeper.client import ArchiveClient, HTTPStatusError, TransportError
from watchkeeper.loaders.gridftp import BadRecord, Options, Plan, Resolver, parse_line, resolve_host
from watchkeeper.loaders.state import LoadState, ReadFrom, line_before, state_for

log = logging.getLogger("watchkeeper.loaders.gridftp")


class LoadAborted(Exception):
    """The run stopped before the end of the log; the state holds the last loaded line."""


@dataclass(slots=True)
class LoadReport:
    loaded: int = 0
    not_transfers: int = 0
    bad: int = 0
    rejected: int = 0
    duplicates: int = 0
    aborted: str | None = None
    interrupted: bool = False
    bad_examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.aborted is None and not self.interrupted and not (self.bad or self.rejected)

    def summary(self) -> str:
        parts = [f"Loaded {self.loaded} records"]
        if self.duplicates:
            parts.append(f"{self.duplicates} already in the archive")
        if self.bad:
            parts.append(f"{self.bad} malformed lines skipped")
        if self.rejected:
            parts.append(f"{self.rejected} records rejected by the server")
        return ", ".join(parts)


class GridftpLoader:
    """Sends the plans of one log's lines through an :class:`ArchiveClient`."""

    def __init__(self, client: ArchiveClient, options: Options, *,
                 resolve: Resolver = resolve_host, single: bool = False,
                 progress: bool = True,
                 save: Callable[[LoadState], None] | None = None,
                 run_id: int | None = None) -> None:
        self.client = client
        self.options = options
        self.resolve = resolve
        self.single = single
        self.progress = progress
        self.save = save
        self.run_id = run_id if run_id is not None else int(time.time())
        self.state: LoadState | None = None

    def _log(self, level: int, event: str, msg: str) -> None:
        log.log(level, "event=%s id=%s %s", event, self.run_id, msg)

    def run(self, sources: list[ReadFrom], previous: LoadState | None = None) -> LoadReport:
        """Load from each ``(path, offset)`` in turn; saves the position as it goes."""
        report = LoadReport()
        self.state = previous
        try:
            for source in sources:
                self._log(logging.INFO, "main.process", f"{source.why}: {source.path}")
                if self._load_file(source, report):
                    break
        except LoadAborted as exc:
            report.aborted = str(exc)
            self._log(logging.ERROR, "scan_and_load.error",
                      f"{exc} - stopping, the position stays at the last loaded record")
        except KeyboardInterrupt:
            report.interrupted = True
            self._log(logging.INFO, "scan_and_load.info", "interrupted - exiting")
        self._persist()
        self._log(logging.INFO, "scan_and_load.end", report.summary())
        return report

    def _persist(self) -> None:
        if self.save is not None and self.state is not None:
            self.save(self.state)

    def _advance(self, path: Path, offset: int, line: str, loaded: bool) -> None:
        count = (self.state.loaded if self.state else 0) + (1 if loaded else 0)
        if self.state is not None and self.state.path == str(path):
            self.state.offset, self.state.last_line, self.state.loaded = offset, line, count
        else:
            self.state = state_for(path, offset, line, count)

    def _load_file(self, source: ReadFrom, report: LoadReport) -> bool:
        """Returns True when the run must stop (``--single``)."""
        offset = source.offset
        if offset and self.state is not None and self.state.path != str(source.path):
            # continuing a rotated file: the state follows it
            self.state = state_for(source.path, offset, line_before(source.path, offset) or "",
                                   self.state.loaded)
        with open(source.path, "rb") as handle:
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # being written: the next run takes it whole
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                loaded = self._consume(line, offset, source.path, report)
                offset += len(raw)
                self._advance(source.path, offset, line, loaded)
                if loaded:
                    self._persist()
                    if self.single:
                        return True
        return False

    def _consume(self, line: str, offset: int, path: Path, report: LoadReport) -> bool:
        try:
            plan = parse_line(line, self.options, self.resolve)
        except BadRecord as exc:
            report.bad += 1
            if len(report.bad_examples) < 5:
                report.bad_examples.append(f"{path}@{offset}: {exc}")
            self._log(logging.WARNING, "scan_and_load.bad", f"{path} byte {offset}: {exc}")
            return False
        if plan is None:
            report.not_transfers += 1
            return False
        if self._send(plan, report):
            report.loaded += 1
            if self.progress and report.loaded % 100 == 0:
                self._log(logging.INFO, "scan_and_load.info", f"{report.loaded} records processed")
            return True
        return False

    def _send(self, plan: Plan, report: LoadReport) -> bool:
        try:
            meta = self.client.create_metadata(plan.metadata)
            key = meta.metadata_key
            if not key:
                raise LoadAborted("the server answered the metadata POST without a metadata-key")
            if plan.bulk:
                self.client.post_bulk(key, plan.bulk)
            if plan.failure is not None:
                self.client.post_point(key, "failures", plan.ts, plan.failure)
        except TransportError as exc:
            raise LoadAborted(str(exc)) from None
        except HTTPStatusError as exc:
            if exc.status == 409:
                report.duplicates += 1
                return True
            if exc.status in (401, 403) or exc.status >= 500:
                raise LoadAborted(f"{plan.summary}: {exc}") from None
            report.rejected += 1
            self._log(logging.WARNING, "scan_and_load.rejected", f"{plan.summary}: {exc}")
            return False
        return True
