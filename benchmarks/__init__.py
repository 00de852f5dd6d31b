"""fsmove's benchmark harness (see README.md in this folder)."""
