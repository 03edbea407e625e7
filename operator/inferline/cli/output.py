"""How the CLI talks: one line per problem, plain text (no markup), stdout vs stderr."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from ..api.problems import Problem

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def say(text: str) -> None:
    out.print(text, markup=False)


def warn(text: str) -> None:
    err.print(text, markup=False)


def report(problems: list[Problem]) -> bool:
    """Print problems one per line (errors to stderr); True when any is an error."""
    for p in problems:
        (err if p.is_error else out).print(str(p), markup=False)
    return any(p.is_error for p in problems)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, no trailing blanks."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
