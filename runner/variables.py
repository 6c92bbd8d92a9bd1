"""`${NAME}` in a workflow's values: the environment's, substituted as the file is read, before
a value is typed (so that `replicas: ${N:-4}` is a number), as docker compose and the shells do.

`${NAME}` is the variable (an error where it is unset), `${NAME:-default}` the default when it
is unset or empty, `${NAME-default}` when it is unset; `$${` is a literal `${`. Nothing else
that starts with `${` is read as a variable: it is an error, rather than a silent literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_FORM = re.compile(r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<how>:?-)(?P<default>[^}]*))?\}|\$\{")
FORMS = "${NAME}, ${NAME:-default} or ${NAME-default} (and $${ for a literal ${)"


@dataclass(frozen=True)
class Unresolved:
    """What could not be substituted, at `offset` in the text."""

    offset: int
    message: str
    code: str  # unset-variable or bad-variable


def substitute(text: str, environ: Mapping[str, str]) -> tuple[str, list[Unresolved], dict[str, str | None]]:
    """`text` with its variables substituted; what could not be, and the variables it read
    (None: unset)."""
    problems: list[Unresolved] = []
    used: dict[str, str | None] = {}

    def replace(found: re.Match[str]) -> str:
        whole = found.group()
        if whole == "$${":
            return "${"
        name = found["name"]
        if name is None:
            problems.append(Unresolved(found.start(), f"'${{' starts no variable here: write {FORMS}", "bad-variable"))
            return whole
        value = environ.get(name)
        used[name] = value
        how = found["how"]
        if (how == ":-" and not value) or (how == "-" and value is None):
            return str(found["default"])
        if value is None:
            # Environment variables are upper case by custom; `${tasks}` is likely a reference.
            hint = f"; a shared object is written ${name}" if name != name.upper() else ""
            message = f"the environment variable {name} is not set (give it a default: ${{{name}:-...}}{hint})"
            problems.append(Unresolved(found.start(), message, "unset-variable"))
            return whole
        return value

    return _FORM.sub(replace, text), problems, used
