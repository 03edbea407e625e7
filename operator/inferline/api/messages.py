"""pydantic's validation errors, said in words a user can act on.

No raw regex and no pydantic phrasing reaches the user: a pattern is described by its entry in
`common.PATTERN_WORDS`, a type mismatch names what was written and what is expected, and a
YAML 1.1 boolean (a bare `y`) where text belongs says to quote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from .common import PATTERN_WORDS

# pydantic error type -> what was expected, for type mismatches.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "enum": "one of",
}


def describe(value: Any) -> str:
    """What a JSON value is, for "got ..." (the value itself when short)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 60 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def explain(
    e: ValidationError, yaml11_word: Callable[[tuple[Any, ...]], str | None] | None = None
) -> list[tuple[tuple[Any, ...], str, str]]:
    """Each error as (location, field path in wire names, message).

    `yaml11_word(loc)` names the YAML 1.1 word (y, no, on...) that became a boolean at `loc`,
    when the error is about one.
    """
    out = []
    for err in e.errors(include_url=False):
        loc = tuple(err["loc"])
        out.append((loc, field_path(loc), message(err, yaml11_word)))
    return out


def field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def message(err: Any, yaml11_word: Callable[[tuple[Any, ...]], str | None] | None = None) -> str:
    t, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if t == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        hint = f"; did you mean {to_camel(key)}?" if "_" in key and to_camel(key) != key else ""
        return f"unknown field (check its spelling and indentation){hint}"
    if t == "missing":
        return "required field is missing"
    if value is True or value is False:
        word = yaml11_word(tuple(err["loc"])) if yaml11_word else None
        if word is not None:
            return (
                f"a bare {word} is the boolean {str(value).lower()} to kubectl (YAML 1.1); "
                f'quote it: "{word}"'
            )
    if t == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(ctx.get("pattern", ""))
        if words is None:  # a test keeps every pattern described; never show a raw regex
            words = "the allowed form"
        return f"must be {words}; got {value!r}"
    if t == "enum":
        return f"must be one of {ctx.get('expected')}; got {describe(value)}"
    if t == "literal_error":
        return f"must be {ctx.get('expected')}; got {describe(value)}"
    if t in _EXPECTED:
        return f"must be {_EXPECTED[t]}; got {describe(value)}"
    if t == "string_too_short":
        n = ctx.get("min_length")
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if t == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters; got {len(value)}"
    if t == "too_short":
        n = ctx.get("min_length")
        return "must have at least one entry" if n == 1 else f"must have at least {n} entries"
    if t == "too_long":
        return f"must have at most {ctx.get('max_length')} entries; got {ctx.get('actual_length')}"
    if t == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}; got {value}"
    if t == "greater_than":
        return f"must be greater than {ctx.get('gt')}; got {value}"
    if t == "less_than_equal":
        return f"must be at most {ctx.get('le')}; got {value}"
    if t == "less_than":
        return f"must be less than {ctx.get('lt')}; got {value}"
    if t == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])
