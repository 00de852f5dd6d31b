"""Content digests, tree verification and reports. Installed as ``fsmove.verify``."""
