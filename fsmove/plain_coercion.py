"""Plain option values coerced without pydantic: part of the start-up time of every run.

Typer 0.2x coerces each parameter through a pydantic ``TypeAdapter`` built on first use,
so every `fsmove` run imported pydantic and built a dozen adapters: ~0.12-0.15 s of CPU,
about a fifth of the fixed cost of a small copy (benchmarks/README.md, "Profile: fixed
cost of a run"). Here a value that is plainly valid for the simple types fsmove's
options use (a ``str``; an ``int`` or ``float`` written plainly and within its range; a
path; lists of those) is coerced directly to the value Typer would give. Anything else
(a value to refuse, any other type) goes to Typer's own coercion, so
every error message stays Typer's word for word. On a Typer whose internals differ,
``install`` changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args, get_origin

_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")

#: What ``_plain`` returns for a value it leaves to Typer.
_TYPER = object()


def install() -> None:
    """Give Typer's parameters the plain coercion (once; idempotent)."""
    try:
        from typer import core
        from typer._param_types import coerce_cli_path
    except ImportError:
        return
    cls = getattr(core, "_TyperParameter", None)
    typer_runtime_param = getattr(cls, "get_runtime_param", None)
    if cls is None or typer_runtime_param is None:
        return
    if getattr(typer_runtime_param, "_fsmove_plain", False):
        return

    def get_runtime_param(self: Any) -> Any:
        light = self.__dict__.get("_fsmove_plain_param")
        if light is None:
            light = PlainParam(self, typer_runtime_param, coerce_cli_path)
            self.__dict__["_fsmove_plain_param"] = light
        return light

    get_runtime_param._fsmove_plain = True  # type: ignore[attr-defined]
    get_runtime_param._fsmove_typer = typer_runtime_param  # type: ignore[attr-defined]
    cls.get_runtime_param = get_runtime_param


class PlainParam:
    """One parameter's coercion: plain values here, the rest by Typer (built lazily)."""

    def __init__(self, param: Any, typer_runtime_param: Any, coerce_path: Any) -> None:
        descriptor = param.type_descriptor
        self._param = param
        self._typer_runtime_param = typer_runtime_param
        self._coerce_path = coerce_path
        self._info = descriptor.parameter_info
        annotation = descriptor.annotation
        self._is_list = get_origin(annotation) is list
        self._leaf = get_args(annotation)[0] if self._is_list else annotation
        #: Only these leaves, with no parser, file or clamping of their own.
        self._plain_type = (
            self._leaf in (str, int, float, Path)
            and self._info.parser is None
            and descriptor.file_annotation is None
            and not self._info.clamp
        )

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:  # an option not given: as Typer's RuntimeParam.coerce
            return () if multi else None
        if self._plain_type:
            if self._is_list and multi and isinstance(value, (list, tuple)):
                items = [self._plain(item, param, ctx) for item in value]
                if all(item is not _TYPER for item in items):
                    return items
            elif not self._is_list and not multi:
                got = self._plain(value, param, ctx)
                if got is not _TYPER:
                    return got
        return self._typer().coerce(value, param=param, ctx=ctx)

    def _typer(self) -> Any:
        return self._typer_runtime_param(self._param)

    def _plain(self, value: Any, param: Any, ctx: Any) -> Any:
        leaf = self._leaf
        if leaf is str:
            return value if type(value) is str else _TYPER
        if leaf is Path:
            if isinstance(value, str) and value:
                value = Path(value)
            if not isinstance(value, Path):
                return _TYPER
            # Typer's own path checks (exists, file/dir, readable...): it only needs
            # pydantic to turn a str into a Path.
            return self._coerce_path(value, self._info, path_type=Path, param=param, ctx=ctx)
        number: int | float
        if leaf is int:
            if type(value) is int:
                number = value
            elif type(value) is str and _INT.fullmatch(value):
                number = int(value)
            else:
                return _TYPER
        else:  # float
            if type(value) in (int, float) and value == value and abs(value) != float("inf"):
                number = float(value)
            elif type(value) is str and _FLOAT.fullmatch(value):
                number = float(value)
            else:
                return _TYPER
        low, high = self._info.min, self._info.max
        if (low is not None and number < low) or (high is not None and number > high):
            return _TYPER  # out of range: Typer words the refusal
        return number
