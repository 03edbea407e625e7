"""A Problem: one thing wrong with the input, worded for the user who has to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Severity = Literal["error", "warning"]


class Check(StrEnum):
    """Which check found a problem.

    YAML, SCHEMA and SIZE are admission's own: kubectl or the apiserver reject the same input
    (the parity tests hold `validate` to that). The others are the semantic checks only
    `validate` and the operator make: what one object's schema cannot say.
    """

    YAML = "yaml"  # the text is not YAML kubectl can read
    SCHEMA = "schema"  # the CRD's structural schema, list-map keys, a CEL rule, ObjectMeta
    SIZE = "size"  # larger than the apiserver stores
    # -- validate only --
    YAML11_KEY = "yaml11-key"  # a bare y/n/on/off key, which kubectl silently renames
    DUPLICATE_KEY = "duplicate-key"  # a key twice in one mapping; kubectl keeps the last
    DUPLICATE_OBJECT = "duplicate-object"  # the same kind/namespace/name twice in the input
    REFERENCES = "references"  # a Backend or Model a pipeline names is missing or invalid
    BACKEND = "backend"  # the backend cannot serve a step (device, format, adapter)
    PLACEMENT = "placement"  # a GPU/MIG request no known GPU offers
    DATAFLOW = "dataflow"  # tensors: produced once, consumed with matching dtype and dims
    DAG = "dag"  # the steps form a cycle
    BATCHING = "batching"  # the ensemble's maxBatchSize against its steps'
    MODEL_NAMES = "model-names"  # two pipelines served together render the same Triton model


ADMISSION_CHECKS = frozenset({Check.YAML, Check.SCHEMA, Check.SIZE})
MISSING_REFERENCE = "missing-reference"


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
    check: Check = Check.SCHEMA

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


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


class Checker:
    """Collects the problems of one object, with its location filled in."""

    def __init__(self, where: str, obj: str) -> None:
        self.where = where
        self.obj = obj
        self.problems: list[Problem] = []

    def error(self, path: str, message: str, check: Check, code: str = "") -> None:
        self.problems.append(Problem(self.where, message, self.obj, path, "error", code, check))

    def warn(self, path: str, message: str, check: Check) -> None:
        self.problems.append(Problem(self.where, message, self.obj, path, "warning", check=check))

    @property
    def failed(self) -> bool:
        return any(p.is_error for p in self.problems)
