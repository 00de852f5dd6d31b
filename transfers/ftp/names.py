"""Names an FTP destination would store under another name, asked once per feature.

Some FTP servers rewrite a name on its way in: pure-ftpd stores ``a<TAB>b`` as ``a_b``
and ``a `` (a trailing space) as ``a_``, and refuses ``a\\b``. A rewritten name is worse
than a refused one: the file lands at another name, which can be another file of the
same copy (overwritten after it was copied) or a file the destination already held; a
folder made under another name fails the next run. So before a file or folder whose
name has such a feature (``tree.risky_name_features``) is copied, the destination is
asked, once per feature and per run: an empty scratch file at its root is renamed to a
name with that feature (renaming is how every file is placed), then the root is listed:
the name must be there as it was sent, which is also what the next run's listing will
see. A feature the server rewrites or refuses makes every name that has it refused
before any byte is sent (exit 3, the reason named). A killed check can leave its scratch
file: ``tree.is_probe_leftover`` knows those names, whatever the server made of them.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..backend import BackendError, no_bytes
from ..tree import probe_scratch_name, risky_name_features
from .session import FtpSession


class NameChecks:
    """One destination's verdicts, by feature sample: None (kept as sent) or why not."""

    def __init__(self) -> None:
        self._verdicts: dict[str, asyncio.Future[str | None]] = {}

    def known(self, name: str) -> bool:
        """Whether every feature of ``name`` has a verdict already (no session needed)."""
        return all(sample in self._verdicts and self._verdicts[sample].done()
                   for sample, _label in risky_name_features(name))

    async def refusal(self, name: str, session: FtpSession | None) -> str | None:
        """Why the destination cannot hold ``name`` as it is, or None. A check that
        could not be made (the connection failed) answers None for now and is asked
        again for the next such name; the file then meets the placing's own check
        (``FtpSession.place``: a file found under another name fails, never passes)."""
        for sample, label in risky_name_features(name):
            refused = await self._verdict(sample, label, session)
            if refused is not None:
                return refused
        return None

    async def _verdict(self, sample: str, label: str,
                       session: FtpSession | None) -> str | None:
        while True:
            pending = self._verdicts.get(sample)
            if pending is not None:
                try:
                    return await asyncio.shield(pending)
                except asyncio.CancelledError:
                    me = asyncio.current_task()
                    if pending.cancelled() and not (me is not None and me.cancelling()):
                        continue  # the asker stopped or failed: ask again here
                    raise
            # Asked here, on the session lent with this name; whoever meets the same
            # feature meanwhile waits for this answer.
            assert session is not None, "a feature never asked needs a session"
            mine: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._verdicts[sample] = mine
            try:
                refused = await self._ask(sample, label, session)
            except BaseException as exc:
                del self._verdicts[sample]
                mine.cancel()
                if isinstance(exc, BackendError):
                    return None
                raise
            mine.set_result(refused)
            return refused

    async def _ask(self, sample: str, label: str, session: FtpSession) -> str | None:
        plain = probe_scratch_name()
        sent = f"{plain}.n{sample}"
        await session.write(plain, no_bytes(), create=True)
        shown: list[str] = []
        try:
            try:
                await session.rename(plain, sent)
            except BackendError as exc:
                if exc.retryable:
                    raise
                # (Its reply names the scratch file, not the user's: left out.)
                return f"the destination server refuses names with {label}"
            shown = await session.names_in("", prefix=f"{plain}.n")
            if shown == [sent]:
                return None
            if not shown:
                return (f"the destination server does not list a name with {label} as "
                        f"it was sent (it stores or shows {sample!r} differently)")
            made = shown[0][len(plain) + 2:]
            return (f"the destination server stores a name with {label} under another "
                    f"name ({sample!r} became {made!r}), which could overwrite another "
                    "file")
        finally:
            for leftover in {plain, sent, *shown}:
                with contextlib.suppress(BackendError):
                    await session.remove(leftover)
