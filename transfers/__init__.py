"""Storage backends, the connection pool, the tree walk, the copy engine and its journal.

Installed as ``fsmove.transfers`` (never as a top-level ``transfers``)."""
