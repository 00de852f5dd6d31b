"""The demo's last words: the same steps against real Clever Cloud FS Buckets."""

from __future__ import annotations

OLD_HOST = "bucket-OLD_UUID-fsbucket.services.clever-cloud.com"
NEW_HOST = "bucket-NEW_UUID-fsbucket.services.clever-cloud.com"


def real_bucket_steps() -> str:
    """What a user types to move a real bucket (placeholders in capitals)."""
    src = f"ftp://USER_OLD@{OLD_HOST}/"
    dst = f"ftp://USER_NEW@{NEW_HOST}/"
    return "\n".join(
        [
            "  Each bucket's FTP host, user and password (a flat JSON object with",
            "  BUCKET_HOST, BUCKET_FTP_USERNAME, BUCKET_FTP_PASSWORD):",
            "    clever addon env addon_OLD_UUID -F json",
            "    clever addon env addon_NEW_UUID -F json",
            "  Passwords go in the environment, not in the URL:",
            "    export FSMOVE_SRC_PASSWORD='…'    # BUCKET_FTP_PASSWORD of the old bucket",
            "    export FSMOVE_DST_PASSWORD='…'    # and of the new one",
            "  Copy while the app still runs (rerun the same command after any",
            "  interruption: it resumes inside partial files):",
            f"    fsmove copy {src} \\",
            f"                {dst}",
            "  From another terminal, the job's progress:",
            "    fsmove status",
            "  Verify, and keep the report for your records:",
            f"    fsmove verify {src} \\",
            f"                  {dst} --report migration.html",
            "  Just before the switch, the delta pass (only what changed since):",
            "    fsmove copy … … --delete --dry-run     # see what would be removed",
            "    fsmove copy … … --delete",
            "  Then link the new bucket to the app, point CC_FS_BUCKET at",
            f"  {NEW_HOST}, restart the app and move DNS",
            "  (the README lists the `clever` commands).",
        ]
    )
