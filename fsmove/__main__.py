"""``python -m fsmove``: the same command as the ``fsmove`` script (for a machine where
the script's folder is not on PATH, e.g. ``pip install --user``)."""

from fsmove.entry import main

main()
