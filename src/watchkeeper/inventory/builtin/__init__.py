"""Built-in model collectors: ``static``, ``system`` and ``snmp``.

They register in the ``watchkeeper.inventory_collectors`` entry-point group like any
third-party one; import them from their modules (``snmp`` needs the ``[snmp]`` extra only
when it builds).
"""
