"""The app-side phase of a migration: the `clever` CLI wrapper, the cut-over steps, DNS checks."""
