"""Bases for store decorators (restic's backend wrappers): forward everything.

A concern that wraps a store (the rate limit in ``ratelimit.py``; counting, failing or
gating wrappers in the tests) subclasses ``StoreDecorator`` and ``SessionDecorator`` and
overrides only what it decorates: every other operation, and every attribute a backend
has of its own (``usable``, ``still_alive``...), reaches the wrapped store unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from .backend import Capabilities, Entry, Session, Store


class SessionDecorator:
    """A session that forwards every operation to ``inner``."""

    def __init__(self, inner: Session) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # Called only for what the class does not define: the backend's own attributes.
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    async def stat(self, path: str) -> Entry:
        return await self.inner.stat(path)

    def list(self, path: str) -> AsyncIterator[Entry]:
        return self.inner.list(path)

    def read(
        self, path: str, *, offset: int = 0, length: int | None = None,
        expect: Entry | None = None,
    ) -> AsyncIterator[bytes]:
        return self.inner.read(path, offset=offset, length=length, expect=expect)

    async def write(self, path: str, data: AsyncIterable[bytes], **options: Any) -> int:
        # The keywords of ``Session.write`` (offset, create, acked, private), as given.
        return await self.inner.write(path, data, **options)

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        await self.inner.mkdir(path, mode=mode)

    async def rename(self, src: str, dst: str) -> None:
        await self.inner.rename(src, dst)

    async def remove(self, path: str) -> None:
        await self.inner.remove(path)

    async def rmdir(self, path: str) -> None:
        await self.inner.rmdir(path)

    async def set_mtime(self, path: str, mtime: float) -> None:
        await self.inner.set_mtime(path, mtime)

    async def place(self, temp: str, final: str, **options: Any) -> None:
        # The keywords of ``Session.place`` (mtime, mode, size), passed on as given.
        await self.inner.place(temp, final, **options)

    async def close(self) -> None:
        await self.inner.close()


class StoreDecorator:
    """A store that forwards to ``inner`` and passes each new session to ``wrap``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def display(self) -> str:
        return self.inner.display

    def wrap(self, session: Session) -> Session:
        """The decorated session (override; the default is the session itself)."""
        return session

    async def connect(self) -> Session:
        return self.wrap(await self.inner.connect())

    async def capabilities(self) -> Capabilities:
        return await self.inner.capabilities()

    async def aclose(self) -> None:
        await self.inner.aclose()
