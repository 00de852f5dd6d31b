"""The demo's last words: the same steps against real Clever Cloud FS Buckets."""

from __future__ import annotations

OLD_ADDON = "addon_OLD_UUID"
NEW_ADDON = "addon_NEW_UUID"


def real_bucket_steps() -> str:
    """What a user types to move a real bucket (placeholders in capitals)."""
    src = f"clever://{OLD_ADDON}/"
    dst = f"clever://{NEW_ADDON}/"
    return "\n".join(
        [
            "  With the `clever` CLI logged in (clever-tools; `clever login`), fsmove",
            "  reads each bucket's FTP host and password itself (clever:// endpoints).",
            "  What the move involves (changes nothing):",
            "    fsmove plan --app APP --to mtl",
            "  The new bucket in the target zone:",
            "    clever addon create fs-bucket NAME --region mtl --yes",
            "  Copy while the app still runs (rerun the same command after any",
            "  interruption: it resumes inside partial files):",
            f"    fsmove copy {src} {dst}",
            "  From another terminal, the job's progress:",
            "    fsmove status",
            "  Verify, and keep the report for your records:",
            f"    fsmove verify {src} {dst} --report migration.html",
            "  Just before the switch, the delta pass (only what changed since):",
            "    fsmove copy … … --delete --dry-run     # see what would be removed",
            "    fsmove copy … … --delete",
            "  Switch the app (link, CC_FS_BUCKET*, unlink, restart; --dry-run first):",
            f"    fsmove cutover --app APP --from {OLD_ADDON} --to {NEW_ADDON}",
            "  Then DNS: set the printed record at your DNS provider and watch it:",
            "    fsmove dns www.example.org --zone mtl --watch",
            "  Or the whole zone migration in one journaled, resumable command: new",
            "  buckets, copy, verify, delta, the app moved to the zone and redeployed",
            "  once, the catch-up, the DNS records (--dry-run first):",
            "    fsmove migrate --app APP --to mtl --dry-run",
            "    fsmove migrate --app APP --to mtl --yes",
        ]
    )
