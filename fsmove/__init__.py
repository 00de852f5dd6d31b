"""fsmove: move a hosted storage bucket without losing a byte."""

__version__ = "0.1.0"
