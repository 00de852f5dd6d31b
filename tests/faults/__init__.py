"""Fault suite (issue 7): servers that restart, drop, refuse, stall or lie; full disks;
unreadable and changing sources. Each case ends in a documented exit code, a one-line
error or a listed per-file failure, no partial file at a final name, and a rerun that
completes once the fault is gone."""
