"""``watchkeeper config check``: build everything ``up`` would, from the same sources."""

from __future__ import annotations

import argparse
from typing import Any

from watchkeeper.cli.options import add_config, add_data_dir, add_listen, settings_overrides
from watchkeeper.cli.run import plugins_from_cwd
from watchkeeper.runtime.config import check_config


def add_commands(commands: Any) -> None:
    config = commands.add_parser("config", help="work with configuration files",
                                 description="Work with configuration files.")
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    text = ("check a configuration as `up` would read it (file, WATCHKEEPER_* environment, "
            "flags), building every part without starting anything")
    check = sub.add_parser("check", help=text, description=text)
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="the YAML configuration file (or -c FILE, or $WATCHKEEPER_CONFIG)")
    add_config(check)
    add_listen(check)
    add_data_dir(check)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    plugins_from_cwd()
    print(check_config(args.file or args.config, overrides=settings_overrides(args)))
    return 0
