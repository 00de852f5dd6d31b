"""One module per client under test; each turns a copy job into a ``Command``."""
