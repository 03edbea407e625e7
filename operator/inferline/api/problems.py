"""A Problem: one thing wrong with the input, worded for the user who has to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """Where (file:line or object, field path) and what is wrong, and what would be right."""

    where: str  # "file.yaml", "file.yaml:12" (line of the document), or "ns/name" from a cluster
    message: str
    obj: str = ""  # "InferencePipeline/readability"
    path: str = ""  # "spec.steps[1].inputMap.INPUT_IDS"
    severity: Severity = "error"
    # Machine-readable kind of problem, for callers that act differently on it (the operator
    # retries a missing reference, but not an invalid spec).
    code: str = ""

    def __str__(self) -> str:
        parts = [self.where]
        if self.obj:
            parts.append(self.obj)
        head = ": ".join(parts)
        field_path = f"{self.path}: " if self.path else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{head}: {prefix}{field_path}{self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


MISSING_REFERENCE = "missing-reference"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


class Checker:
    """Collects the problems of one object, with its location filled in."""

    def __init__(self, where: str, obj: str) -> None:
        self.where = where
        self.obj = obj
        self.problems: list[Problem] = []

    def error(self, path: str, message: str, code: str = "") -> None:
        self.problems.append(Problem(self.where, message, self.obj, path, code=code))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.where, message, self.obj, path, "warning"))

    @property
    def failed(self) -> bool:
        return any(p.is_error for p in self.problems)
