"""Help pages people can read, and usage errors in the same one-line style as every
other error.

Typer (0.2x) prints each option's Python type as a placeholder (``<bool>``,
``<list[str]>``) and keeps the hard line breaks of a docstring's later paragraphs, so
the text wraps twice. ``tidy_help`` walks the built command tree once before it runs:

* a flag shows no placeholder; any other option without an explicit ``metavar`` gets
  a word (``N``, ``NUMBER``, ``TEXT``, ``PATH``, or its choices);
* each paragraph of a command's help becomes one line, for Typer to wrap to the
  terminal; a paragraph whose lines are all indented (examples) is kept as written;
* each command's help ends with its exit codes (``EXIT_CODES``).
"""

from __future__ import annotations

import inspect
from typing import Any

#: What each command's exit codes mean (the enum is ``exitcodes.ExitCode``).
EXIT_CODES: dict[str, str] = {
    "copy": "0 every file copied (or nothing to do); 1 error that stopped the run; 2 usage; "
            "3 partial: some files failed (listed; rerun to retry them); 4 with --verify: "
            "the trees differ; 5 authentication or configuration; 130 interrupted (journal "
            "saved; rerun to resume).",
    "verify": "0 everything matched; 1 error; 2 usage; 3 some paths could not be read; "
              "4 differences found; 5 authentication or configuration; 130 interrupted.",
    "resume": "as copy: 0 done; 1 error; 2 usage (no such job); 3 partial; 5 "
              "authentication; 130 interrupted.",
    "status": "0 shown; 1 the journal cannot be read; 2 usage (no such job).",
    "demo": "0 the demo ran and the verification matched; 1 a step failed; 2 usage; "
            "4 the verification found a difference; 130 interrupted.",
    "dns": "0 every domain matches (or nothing is expected); 1 the name server does not "
           "answer; 2 usage; 4 some domain does not match yet; 130 interrupted.",
    "plan": "0 shown; 1 error; 2 usage; 5 no clever CLI or not logged in.",
    "cutover": "0 done; 1 a clever command failed (rerun to continue); 2 usage; 5 no "
               "clever CLI or not logged in; 130 interrupted.",
    "migrate": "0 done; 1 error; 2 usage; 3 partial copy; 4 verification mismatch (the "
               "app untouched); 5 authentication or configuration; 130 interrupted. "
               "Rerun the same command to continue at the failed phase.",
}


def _metavar_for(param: Any) -> str:
    """From Typer's type descriptor where this Typer has one, else from the Click
    parameter type (the lowest allowed Typer, 0.16, has no descriptors)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return _metavar_from_descriptor(param, desc)
    kind = getattr(param, "type", None)
    choices = getattr(kind, "choices", None)
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    # By class name along the MRO: recent Typer vendors Click, so these are not always
    # the ``click`` package's own classes.
    bases = {cls.__name__ for cls in type(kind).__mro__}
    if "IntParamType" in bases:
        return "N"
    if "FloatParamType" in bases:
        return "NUMBER"
    if "Path" in bases:
        return "PATH"
    return "TEXT"


def _metavar_from_descriptor(param: Any, desc: Any) -> str:
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    bare = param.bare_type() if hasattr(param, "bare_type") else "str"
    if "int" in bare:
        return "N"
    if "float" in bare:
        return "NUMBER"
    if desc.is_path or "Path" in bare:
        return "PATH"
    return "TEXT"


def join_paragraphs(text: str) -> str:
    """One line per paragraph; paragraphs whose lines are all indented stay as they are."""
    out = []
    for para in inspect.cleandoc(text).split("\n\n"):
        lines = para.split("\n")
        if all(line.startswith(" ") for line in lines if line):
            out.append("\b\n" + para)  # click keeps a paragraph marked \b as it is
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _tidy_argument(param: Any) -> None:
    """An argument shows its name only (``SRC``, ``[JOB]``), no ``<str>`` and no braces
    (Typer writes a required argument ``{SRC}`` in the usage line)."""
    def display_type(*_args: Any, **_kwargs: Any) -> str:
        return ""

    def usage_name() -> str:
        shown = param.metavar or param.name.upper()
        shown = shown if param.required else f"[{shown}]"
        return shown + ("..." if param.nargs != 1 else "")

    param.display_type_rich = display_type
    param._usage_display_name = usage_name
    param.make_metavar = lambda *_a, **_k: usage_name()


def _tidy_help_option(command: Any) -> None:
    """``--help`` is made per context: it is a flag too (no ``<bool>``)."""
    made = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def tidy_help(command: Any, name: str | None = None) -> None:
    """Apply the module docstring's rules to ``command`` and its subcommands."""
    _tidy_help_option(command)
    for param in getattr(command, "params", []):
        kind = getattr(param, "param_type_name", "")
        if kind == "argument":
            _tidy_argument(param)
        if kind != "option" or param.metavar is not None:
            continue
        param.metavar = "" if getattr(param, "is_flag", False) else _metavar_for(param)
    if command.help:
        command.help = join_paragraphs(command.help)
        codes = EXIT_CODES.get(name or "")
        if codes and "Exit codes:" not in command.help:
            command.help += f"\n\nExit codes: {codes}"
    for sub_name, sub in getattr(command, "commands", {}).items():
        tidy_help(sub, sub_name)
