"""Run every benchmark in this folder with its default sizes and gather what they print.

    python benchmarks/run_all.py [--only archive,wire] [--out FILE]

Each ``benchmarks/*.py`` that is a benchmark (not this runner, not a helper such as
``peers.py``) runs in its own process, one after the other (the machine is shared: run
nothing else meanwhile). Their reports are printed, and with ``--out`` written to a
Markdown file, each under its own heading with the time it took. A benchmark that fails
is reported with the end of its error output, and the runner exits non-zero at the end.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"run_all", "peers", "soak"}  # soak runs an hour by default: run it by itself


def benchmarks(only: set[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.stem not in HELPERS
                   and not p.stem.startswith("_"))
    return [p for p in found if not only or p.stem in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, default=None, help="also write the reports here")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [f"# Benchmark reports ({stamp})", ""]
    failed = []
    for script in benchmarks(only):
        print(f"== {script.stem}", file=sys.stderr, flush=True)
        began = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                check=False)
        took = time.monotonic() - began
        body = result.stdout.strip()
        if result.returncode:
            failed.append(script.stem)
            body += f"\n\nFAILED (exit {result.returncode}):\n" + result.stderr[-3000:]
        section = f"## {script.stem} ({took:.0f} s)\n\n{body}\n"
        print(section, flush=True)
        sections.append(section)
    if args.out:
        args.out.write_text("\n".join(sections))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
