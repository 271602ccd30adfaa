"""The command line: ``watchkeeper up | serve | query | series | config check``."""
