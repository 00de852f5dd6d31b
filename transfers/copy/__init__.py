"""Copying a tree: the engine (the coordinator of a run) and its parts.

``engine`` coordinates; ``options`` is what a job was asked; ``transfer`` holds each
file's state; ``attempt`` moves one file once; ``resume`` decides what an interrupted
attempt left that may be kept; ``pipe`` carries the source's bytes to the destination;
``folders`` and ``deletion`` change the destination's tree; ``stats`` counts the run.
The survey and the plan that come first are ``transfers/survey.py`` and
``transfers/plan.py``.
"""

from .engine import CopyEngine
from .folders import DestinationFolderError, FolderNotMadeError
from .options import CopyOptions

__all__ = ["CopyEngine", "CopyOptions", "DestinationFolderError", "FolderNotMadeError"]
