"""docs/deploy.md, run as written: its files, its units' ExecStart lines, its commands.

The page's fenced blocks with a ``title="PATH"`` are files (the configuration, the
environment files, the systemd units) and are written to a temporary directory; the
``sh`` blocks without a title are commands, run with bash (``set -euo pipefail``) in
page order. Host names, paths, schemas, the bus prefix and ports are replaced by local
ones (:class:`Local`), nothing else: two ``serve`` processes ("api1", "api2"), one
``engine`` process per engine of the configuration (an engine host), and the poller
(``up``) are started from the units' ``ExecStart``, ``Environment`` and
``EnvironmentFile`` lines, on the PostgreSQL and RabbitMQ of ``scripts/services up``.
The commands before the units' section run first (the configuration check, the schema),
the others once every process is up. Then the test checks what the page promises: the
health checks answer ok, the poller's checks reach the archive through the engine
processes, the rotated key is the only one left and its write is readable from the
other API host, and every process exits 0 on SIGTERM.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest
import yaml

from tests.support.serve import free_port
from watchkeeper.pipeline.bus.amqp import AmqpBus
from watchkeeper.pipeline.pgconnect import DEFAULT_DSN

# Eight watchkeeper processes and a dozen commands: about a minute on a quiet 2-core
# machine, but each start-up is ~1 s of CPU for imports, which a machine at load 20
# stretches to 20 s: the bounds are generous, not targets.
pytestmark = [pytest.mark.external_service, pytest.mark.slow, pytest.mark.timeout(900)]
STEP_TIMEOUT = 300

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "deploy.md"
PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN", DEFAULT_DSN)
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BIN = Path(sys.executable).parent
FENCE = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```$', re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    text: str
    at: int  # offset in the page

    @property
    def is_file(self) -> bool:
        return self.title is not None

    @property
    def is_command(self) -> bool:
        return self.lang == "sh" and self.title is None


def blocks() -> list[Block]:
    text = DOC.read_text()
    return [Block(m[1], m[2], m[3], m.start()) for m in FENCE.finditer(text)]


@dataclass
class Local:
    """What the page names, here: paths under ``root``, fresh schemas, free ports."""

    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    ports: dict[str, int] = field(default_factory=lambda: {
        "api1": free_port(), "api2": free_port(), "poller": free_port()})

    @property
    def schemas(self) -> list[str]:
        return [f"{name}_{self.tag}" for name in ("wk_archive", "wk_state", "wk_esmond")]

    @property
    def prefix(self) -> str:
        return f"wkdoc_{self.tag}"

    def __call__(self, text: str) -> str:
        pairs = {
            "/opt/watchkeeper/bin/": f"{BIN}/",
            "/etc/systemd/system": str(self.root / "systemd"),
            "/etc/watchkeeper": str(self.root / "etc"),
            "/var/lib/watchkeeper": str(self.root / "var"),
            "/var/backups/watchkeeper": str(self.root / "backups"),
            "host=db.example.net user=watchkeeper dbname=watchkeeper": PG_DSN,
            "amqp://watchkeeper:CHANGE-ME@mq.example.net:5672/": AMQP_URL,
            "wk_prod": self.prefix,
            "api1.example.net:8080": f"127.0.0.1:{self.ports['api1']}",
            "api2.example.net:8080": f"127.0.0.1:{self.ports['api2']}",
            "127.0.0.1:8080": f"127.0.0.1:{self.ports['poller']}",
        }
        for name in ("wk_archive", "wk_state", "wk_esmond"):
            pairs[name] = f"{name}_{self.tag}"
        pattern = re.compile("|".join(re.escape(k) for k in sorted(pairs, key=len, reverse=True)))
        return pattern.sub(lambda m: pairs[m[0]], text)

    def path(self, title: str) -> Path:
        return Path(self(title))


@dataclass
class Unit:
    """The lines of a systemd unit the test acts on."""

    exec_start: list[str]
    environment: dict[str, str]

    @classmethod
    def read(cls, path: Path, instance: str = "") -> Unit:
        env: dict[str, str] = {}
        command: list[str] = []
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStart":
                command = shlex.split(value.replace("%i", instance))
            elif key == "Environment":
                name, _, setting = value.partition("=")
                env[name] = setting
            elif key == "EnvironmentFile":
                env.update(_env_file(Path(value.lstrip("-"))))
        return cls(command, env)


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return dict(pairs)


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return f"--- {self.name}\n{self.log.read_text()[-2500:]}"


def start(name: str, unit: Unit, local: Local, **overrides: str) -> Running:
    """A unit's ExecStart as its own "host": a data directory of its own, ``overrides``
    in the environment (the free port of this instance)."""
    data = local.root / "hosts" / name
    data.mkdir(parents=True)
    env = {**os.environ, **unit.environment, "WATCHKEEPER_DATA_DIR": str(data), **overrides}
    log = local.root / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(unit.exec_start, cwd=data, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return Running(name, proc, log)


def wait_for(check: object, what: str, running: list[Running],
             timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline or any(r.proc.poll() is not None for r in running):
            raise AssertionError(f"waiting for {what}:\n" + "\n".join(r.tail() for r in running))
        time.sleep(0.1)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_commands(block: Block, local: Local) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    print(f"{time.strftime('%T')} running {block.text[:60]!r}", file=sys.stderr)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", local(block.text)], env=env,
                          cwd=local.root, capture_output=True, text=True, timeout=STEP_TIMEOUT,
                          check=False)
    assert done.returncode == 0, (f"{block.text}\nexit {done.returncode}\n{done.stdout}\n"
                                  f"{done.stderr}")
    return done.stdout


@contextmanager
def cleaned(local: Local) -> Iterator[None]:
    """Drop the schemas afterwards."""
    import psycopg

    try:
        yield
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in local.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def delete_queues(config: dict[str, object], local: Local) -> None:
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=local.prefix)
        await bus.start(stack)
        for engine in config["engines"]:  # type: ignore[attr-defined]
            await bus.declare(engine["name"], partitions=engine.get("partitions", 1))
        await bus.delete_queues()


async def test_the_deployment_page_runs_as_written(tmp_path: Path) -> None:
    """Every file, unit and command of docs/deploy.md works on real processes: the API
    hosts answer, the poller's checks pass the engine processes into the archive, a
    rotated key leaves one key, backups and the schema version read back."""
    local = Local(tmp_path)
    page = blocks()
    for block in page:
        if block.is_file:
            path = local.path(block.title or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(local(block.text))
    (tmp_path / "var").mkdir()
    config = yaml.safe_load((tmp_path / "etc" / "wk.yaml").read_text())
    first_unit = min(b.at for b in page if b.lang == "ini")
    commands = [b for b in page if b.is_command]
    outputs: dict[str, str] = {}
    running: list[Running] = []
    systemd = tmp_path / "systemd"
    with cleaned(local):
        try:
            for block in (b for b in commands if b.at < first_unit):
                outputs[block.text] = run_commands(block, local)
            serve = Unit.read(systemd / "watchkeeper-serve.service")
            for api in ("api1", "api2"):  # one after the other, as hosts come up
                running.append(start(api, serve, local, WATCHKEEPER_SERVER__LISTEN=(
                    f"127.0.0.1:{local.ports[api]}")))
                wait_for(lambda a=api: healthy(local.ports[a]), f"{api} to answer", running)
            for engine in config["engines"]:
                unit = Unit.read(systemd / "watchkeeper-engine@.service", engine["name"])
                running.append(start(f"engine-{engine['name']}", unit, local))
            poller = Unit.read(systemd / "watchkeeper-poller.service")
            running.append(start("poller", poller, local))
            wait_for(lambda: healthy(local.ports["poller"]), "the poller to answer", running)
            wait_for(lambda: all("running" in r.log.read_text() for r in running
                                 if r.name.startswith("engine-")),
                     "every engine to run", running)
            for block in (b for b in commands if b.at > first_unit):
                outputs[block.text] = run_commands(block, local)
            check_outcome(local, outputs, running)
        finally:
            for r in running:
                if r.proc.poll() is None:
                    r.proc.send_signal(signal.SIGTERM)
            codes = {r.name: r.proc.wait(timeout=STEP_TIMEOUT) for r in running}
            await delete_queues(config, local)
    assert codes == dict.fromkeys(codes, 0), "\n".join(r.tail() for r in running)


def check_outcome(local: Local, outputs: dict[str, str], running: list[Running]) -> None:
    health = next(out for text, out in outputs.items() if "/api/v1/health" in text)
    assert len(re.findall(r'"status":\s*"ok"', health)) == 2, health  # api1 and api2
    version = next(out for text, out in outputs.items() if "schema_version" in text)
    assert version.strip() == "2"
    dumped = next(out for text, out in outputs.items() if "pg_restore --list" in text)
    assert int(dumped.strip()) >= 5  # series, chunks, ingest_log, meta, tokens...
    tokens = subprocess.run([BIN / "watchkeeper", "token", "list", "-o", "json", "-c",
                             str(local.root / "etc" / "wk.yaml")], capture_output=True,
                            check=True, text=True, timeout=STEP_TIMEOUT)
    site = [t for t in msgspec.json.decode(tokens.stdout) if t["user"] == "site-a"]
    assert len(site) == 1, site  # the new key; the old one was revoked
    # the key's write through api1 is read through api2 (public_reads: false: with a key)
    key = _a_read_key(local)
    with httpx.Client(base_url=f"http://127.0.0.1:{local.ports['api2']}",
                      headers={"Authorization": f"Token {key}"}, timeout=10) as api2:
        got = api2.get("/api/v1/query", params={"series": "site-a/deploy/check",
                                                 "start": 1_699_999_999, "end": 1_700_000_001})
        assert got.status_code == 200, got.text
        assert [p[1] for p in got.json()["points"]] == [1.0]

        def polled() -> bool:
            # the site's device (site.env's inventory file), through the engines, stored
            listed = api2.get("/api/v1/series", params={"prefix": "gw-a/reach/"})
            return listed.status_code == 200 and listed.json()["total"] > 0

        wait_for(polled, "the poller's checks of gw-a in the archive", running)


def _a_read_key(local: Local) -> str:
    done = subprocess.run([BIN / "watchkeeper", "token", "create", "--user", "reader", "-c",
                           str(local.root / "etc" / "wk.yaml")], capture_output=True,
                          check=True, text=True, timeout=STEP_TIMEOUT)
    return done.stdout.split()[-1]
