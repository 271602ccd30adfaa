"""A ``watchkeeper up`` of a test module's own, for pages whose tests change shared state
(tokens revoked, alarm states changed) or need a configuration conftest's stack lacks
(an inventory file with ``upstream`` relations, an admin token)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.console.conftest import WATCHKEEPER
from tests.console.test_pages import Page
from tests.e2e.test_up import Stack, free_port


@dataclass(frozen=True)
class Own:
    url: str
    config: Path

    def token(self, user: str, *flags: str) -> str:
        """A key made by the command line, as an operator makes the first admin key."""
        made = subprocess.run([*WATCHKEEPER, "token", "create", "--user", user, *flags,
                               "-c", str(self.config)], capture_output=True, text=True,
                              timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        return made.stdout.split()[-1]


@contextmanager
def running_up(tmp: Path, config: str) -> Iterator[Own]:
    """``watchkeeper up`` on ``config`` (``data_dir`` is set to ``tmp/var``), until the end."""
    path = tmp / "wk.yaml"
    path.write_text(f"data_dir: {tmp / 'var'}\n{config}")
    (tmp / "var").mkdir()
    port = free_port()
    proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(path), "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack = Stack(proc, f"http://127.0.0.1:{port}")
    try:
        stack.wait_ready()
        yield Own(stack.url, path)
    finally:
        if proc.poll() is None:
            stack.stop()


@contextmanager
def tab_on(browser: Any, url: str) -> Iterator[Page]:
    """A fresh browser context (own sessionStorage: no token) on ``url``."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield Page(context.new_page(), url)
    finally:
        context.close()


def use_token(page: Any, key: str, view: str) -> None:
    """Type ``key`` in the box at the top right, as a user does, and wait for ``view`` to
    render again with it."""
    page.fill("#token", key)
    page.click("#token-save")
    page.wait_for_selector(f"body[data-ready='{view}']", state="attached", timeout=15_000)
