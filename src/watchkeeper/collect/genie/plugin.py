"""genie.telemetry's plugin contract, for plugins written without genie.telemetry installed.

A plugin is a class named ``Plugin`` in a module (or an OS-specific subpackage found by
genie's abstraction lookup on ``device.os``)::

    class Plugin(BasePlugin):
        __plugin_name__ = "Uname check"
        __supported_os__ = ["linux"]

        @classproperty
        def parser(cls):                        # optional: --uname_* options
            parser = argparse.ArgumentParser(add_help=False)
            parser.add_argument("--uname_expect", default="Linux")
            return parser

        def execution(self, device, **kwargs):  # a pyATS device; blocking is fine
            device.connect()
            output = device.execute("uname -a")
            return OK(output) if self.args.uname_expect in output else CRITICAL(output)

Plugins subclassing genie.telemetry's own ``BasePlugin`` run the same way: the adapter
(:mod:`watchkeeper.collect.genie.adapter`) relies only on this contract.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class classproperty(Generic[T]):  # noqa: N801 - named as pyATS names its own
    """A read-only property of the class (``Plugin.parser``), as pyATS' ``classproperty``."""

    def __init__(self, getter: Callable[[Any], T]) -> None:
        self._getter = getter

    def __get__(self, instance: object, owner: type) -> T:
        return self._getter(owner)


class BasePlugin:
    """The base of a genie-style plugin: metadata, an optional parser, one ``execution``."""

    __plugin_name__: str
    __version__ = "1.0.0"
    __supported_os__: Sequence[str] = ()

    def __init__(self, interval: float | None = None, **kwargs: Any) -> None:
        self.args: argparse.Namespace | None = None
        self.interval = interval

    @property
    def name(self) -> str:
        """The display name: ``__plugin_name__``, else the module's name."""
        return getattr(self, "__plugin_name__", type(self).__module__)

    @property
    def version(self) -> str:
        return self.__version__

    @property
    def token(self) -> list[str]:
        """The operating systems the plugin supports (empty: any)."""
        return list(self.__supported_os__)

    @classproperty
    def parser(cls) -> argparse.ArgumentParser | None:  # noqa: N805 - a classproperty
        return None

    def parse_args(self, argv: Sequence[str]) -> None:
        """Parse this plugin's options out of ``argv`` into ``self.args``; others are left."""
        parser = self.parser
        if parser is not None:
            self.args, _ = parser.parse_known_args(list(argv))

    def execution(self, device: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a plugin implements execution(device, **kwargs)")
