"""Loaders that turn measurement logs and tool output into esmond archive writes.

* :mod:`.gridftp` parses GridFTP transfer logs (classic key=value and JSON);
* :mod:`.state` keeps a loader's position in a log (JSON, atomic, rotation by inode);
* :mod:`.gridftp_load` sends the writes through :class:`~watchkeeper.client.ArchiveClient`;
* :mod:`.iperf3` extracts iperf3 results from ``bwctl --parsable --verbose`` output or
  plain ``iperf3 -J`` JSON.

Parsing is pure (no I/O): the command-line tools (``watchkeeper archive load-gridftp``,
``... pipe``) do the reading and sending. Depends only on core modules and the client.
"""
