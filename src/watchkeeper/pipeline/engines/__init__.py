"""Built-in engines, each registered in the ``watchkeeper.engines`` entry-point group."""
