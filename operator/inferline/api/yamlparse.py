"""Read YAML exactly as kubectl does, from libyaml's event stream, with line numbers.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which decodes with go-yaml v2 (YAML 1.1:
a bare `yes`, `y`, `on` is a boolean, `0755` is octal, `1.0` is a number) and then writes JSON,
so the apiserver sees `1.0` as the integer 1 and never sees a timestamp or a NaN. This module
resolves plain scalars with go-yaml v2's rules and normalizes numbers as that JSON round trip
does, so `validate` judges the object the apiserver will judge.

It is also the guard against hostile input and silent surprises: duplicate keys are reported
naming both lines (kubectl keeps the last value without a word),
nesting is bounded, alias expansion is bounded (go-yaml v2's own ratio rule), and a document
larger than any object the apiserver stores is refused before it is built. Everything runs on
libyaml's C event stream with an explicit stack: no recursion, no traceback.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

# No Inferline object nests deeper than about 8 levels; 100 leaves room for any mistake that is
# still worth a field-level message, and keeps every later walk (JSON, pydantic) shallow.
MAX_DEPTH = 100
# A document's YAML text may be this large at most: 4x the largest object the apiserver stores
# (YAML with comments and indentation is wordier than the JSON that is sent).
MAX_DOCUMENT_CHARS = 4 * 1536 * 1024

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

# go-yaml v2 resolve.go: the scalars it looks up in a table (only when the first character is
# one of its hints).
_TRUE_WORDS = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE_WORDS = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_RESOLVE: dict[str, Any] = {w: True for w in _TRUE_WORDS}
_RESOLVE.update({w: False for w in _FALSE_WORDS})
_RESOLVE.update({"~": None, "null": None, "Null": None, "NULL": None})
_RESOLVE.update({w: math.nan for w in (".nan", ".NaN", ".NAN")})
_RESOLVE.update({w: math.inf for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")})
_RESOLVE.update({w: -math.inf for w in ("-.inf", "-.Inf", "-.INF")})
_HINTS = frozenset("+-0123456789yYnNtTfFoO~.")
# Booleans only YAML 1.1 has: PyYAML and YAML 1.2 tools read some of them as strings.
YAML11_ONLY_BOOLEANS = frozenset(_TRUE_WORDS + _FALSE_WORDS) - {
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
}

# strconv.ParseInt(s, 0, 64) syntax (after go-yaml drops '_'): sign, then 0x / 0o / 0b / a
# leading 0 (octal) / decimal.
_GO_INT = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_GO_UINT = re.compile(r"^(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")

_STR_TAG = "tag:yaml.org,2002:str"
_KNOWN_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class YamlProblem(Exception):
    """A mistake in the YAML text itself, at a 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


def _go_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), then ParseUint: the integer go-yaml v2 reads, if any."""
    if not _GO_INT.match(s):
        return None
    sign = -1 if s[0] == "-" else 1
    body = s.lstrip("+-")
    prefix = body[:2].lower()
    if prefix == "0x":
        v = int(body[2:], 16)
    elif prefix == "0o":
        v = int(body[2:], 8)
    elif prefix == "0b":
        v = int(body[2:], 2)
    elif len(body) > 1 and body[0] == "0":
        v = int(body[1:], 8)
    else:
        v = int(body)
    v *= sign
    if _INT64_MIN <= v <= _INT64_MAX:
        return v
    if sign > 0 and s[0] != "+" and _GO_UINT.match(s) and v <= _UINT64_MAX:
        return v
    return None


def resolve_plain(s: str) -> Any:
    """A plain (unquoted, untagged) scalar as go-yaml v2 resolves it."""
    if not s:
        return None
    h = s[0]
    if h not in _HINTS:
        return s
    if s in _RESOLVE:
        return _RESOLVE[s]
    if h == ".":
        return float(s) if _DOT_FLOAT.match(s) else s
    if h in "yYnNtTfFoO~":
        return s
    # A timestamp (four digits and '-') stays a string: go-yaml v2 gives interface{} targets
    # the text, and nothing else that starts so is a number.
    if len(s) > 4 and s[4] == "-" and s[:4].isdigit():
        return s
    plain = s.replace("_", "")
    v = _go_int(plain)
    if v is not None:
        return v
    if _YAML_FLOAT.match(plain):
        return float(plain)
    if plain.startswith("0b") and re.fullmatch(r"0b[01]+", plain):
        return int(plain[2:], 2)
    if plain.startswith("-0b") and re.fullmatch(r"-0b[01]+", plain):
        return -int(plain[3:], 2)
    return s


def _tagged(tag: str, value: str, line: int, col: int) -> Any:
    """A scalar with an explicit tag, as go-yaml v2 decodes it into interface{}."""
    if tag == _STR_TAG or tag not in _KNOWN_SCALAR_TAGS:
        # go-yaml keeps the text of a tag it does not know (!foo, !!binary).
        return value
    resolved = resolve_plain(value)
    kind = tag.rsplit(":", 1)[1]
    ok = {
        "int": isinstance(resolved, int) and not isinstance(resolved, bool),
        "float": isinstance(resolved, int | float) and not isinstance(resolved, bool),
        "bool": isinstance(resolved, bool),
        "null": resolved is None,
        "timestamp": isinstance(resolved, str),
    }[kind]
    if not ok:
        raise YamlProblem(line, col, f"cannot decode {value!r} as !!{kind}")
    if kind == "float":
        return float(resolved)
    return resolved


def json_number(v: float) -> int | float:
    """A float as the apiserver sees it after kubectl's JSON round trip (1.0 arrives as 1)."""
    if v.is_integer() and abs(v) < 1e21:
        i = int(v)
        if _INT64_MIN <= i <= _INT64_MAX:
            return i
    return v


def _float32_g(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 32): how sigs.k8s.io/yaml writes a float map key."""
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    f32 = struct.unpack("f", struct.pack("f", v))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            break
    mantissa, _, exp = text.partition("e")
    if not exp:
        return mantissa
    n = int(exp)
    if -4 <= n < 21:
        return repr(float(text)).removesuffix(".0")
    return f"{mantissa}e{'-' if n < 0 else '+'}{abs(n):02d}"


@dataclass
class RawDocument:
    """One YAML document as kubectl would send it, with where each value was written."""

    data: Any
    line: int  # 1-based line where the document's content starts
    # id(container) -> {key or index: (line, column)} (1-based) of each entry in it.
    positions: dict[int, dict[Any, tuple[int, int]]] = field(default_factory=dict)
    # (id(container), key or index) -> the YAML 1.1 word that became this boolean ("y", "on").
    yaml11_words: dict[tuple[int, Any], str] = field(default_factory=dict)
    # Keys that kubectl silently renames (a bare `y:` becomes "true"): (line, column, message).
    renamed_keys: list[tuple[int, int, str]] = field(default_factory=list)
    # Keys written twice in one mapping (kubectl keeps the last): (line, column, message).
    duplicate_keys: list[tuple[int, int, str]] = field(default_factory=list)

    def position(self, path: tuple[Any, ...]) -> tuple[int, int] | None:
        """(line, column) of the entry at `path` (keys and indexes), or of its nearest parent."""
        node, best = self.data, None
        for part in path:
            here = self.positions.get(id(node))
            if here is None or part not in here:
                break
            best = here[part]
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        return best

    def yaml11_word(self, path: tuple[Any, ...]) -> str | None:
        """The YAML 1.1 word written at `path` when that value is such a boolean."""
        if not path:
            return None
        node = self.data
        try:
            for part in path[:-1]:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
        return self.yaml11_words.get((id(node), path[-1]))


_NO_KEY: Any = object()
_UNSEEN: Any = object()
_MERGE: Any = object()


class _Frame:
    __slots__ = ("anchor", "container", "is_map", "key", "key_mark", "lines", "mark", "seen")

    def __init__(self, container: Any, is_map: bool, mark: tuple[int, int], anchor: str | None):
        self.container = container
        self.is_map = is_map
        self.mark = mark
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_mark: tuple[int, int] = mark
        self.lines: dict[Any, tuple[int, int]] = {}
        self.seen: dict[Any, int] = {}  # explicitly written key -> its line (duplicates)


def _size(value: Any) -> int:
    """How many nodes a value holds (for alias accounting)."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack.extend(v.values())
            n += len(v)
        elif isinstance(v, list):
            stack.extend(v)
    return n


def _allowed_alias_ratio(decoded: int) -> float:
    """go-yaml v2's limit on the share of decoded nodes that may come from aliases."""
    low, high = 400_000, 4_000_000
    if decoded <= low:
        return 0.99
    if decoded >= high:
        return 0.10
    return 0.99 - 0.89 * (decoded - low) / (high - low)


def _finite(v: float, line: int, col: int) -> int | float:
    if math.isnan(v) or math.isinf(v):
        raise YamlProblem(
            line, col, f"{v} is not a number JSON can carry; kubectl refuses it (quote it)"
        )
    return json_number(v)


class _Builder:
    """Turns one document's events into data, keeping positions; bounded in depth and aliases."""

    def __init__(self, line: int) -> None:
        self.doc = RawDocument(None, line)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.decoded = 0
        self.aliased = 0
        self.has_root = False

    def key(self, v: Any, mark: tuple[int, int], word: str | None) -> str:
        if isinstance(v, str):
            return v
        if v is True or v is False:
            text = "true" if v else "false"
            if word is not None:
                self.doc.renamed_keys.append(
                    (
                        *mark,
                        f"a bare {word} key is the boolean {text} to kubectl (YAML 1.1), which "
                        f'sends it as the key "{text}"; quote it: "{word}"',
                    )
                )
            return text
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return _float32_g(v)
        if v is None:
            raise YamlProblem(*mark, "a mapping key is empty (null); kubectl refuses it")
        raise YamlProblem(*mark, "a mapping key must be a single value, not a list or mapping")

    def add(self, v: Any, mark: tuple[int, int], word: str | None = None) -> None:
        stack = self.stack
        if not stack:
            self.doc.data = v
            self.has_root = True
            return
        f = stack[-1]
        c = f.container
        if not f.is_map:
            i = len(c)
            c.append(v)
            f.lines[i] = mark
            if word is not None:
                self.doc.yaml11_words[(id(c), i)] = word
            return
        key = f.key
        if key is _NO_KEY:
            f.key = self.key(v, mark, word)
            f.key_mark = mark
            return
        f.key = _NO_KEY
        if key is _MERGE:
            self.merge(f, v, mark)
            return
        first = f.seen.get(key)
        if first is not None:
            # kubectl keeps the last value without a word; say so, and read on as it does.
            self.doc.duplicate_keys.append(
                (
                    *f.key_mark,
                    f"duplicate key {key!r}: also set on line {first}; kubectl silently keeps "
                    "the last one: keep one",
                )
            )
        f.seen[key] = f.key_mark[0]
        c[key] = v
        f.lines[key] = f.key_mark
        if word is not None:
            self.doc.yaml11_words[(id(c), key)] = word

    def merge(self, f: _Frame, v: Any, mark: tuple[int, int]) -> None:
        """`<<: *base` (or a list of them): go-yaml v2 writes their keys in, in order."""
        sources = v if isinstance(v, list) else [v]
        for src in reversed(sources):  # earlier sources take precedence
            if not isinstance(src, dict):
                raise YamlProblem(*mark, "a merge key (<<) needs a mapping or a list of mappings")
            for k, item in src.items():
                f.container[k] = item
                f.lines[k] = mark

    def start(self, is_map: bool, mark: tuple[int, int], anchor: str | None) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise YamlProblem(
                *mark,
                f"nested deeper than {MAX_DEPTH} levels; no Inferline object is (is a bracket "
                "or an indentation wrong?)",
            )
        self.decoded += 1
        self.stack.append(_Frame({} if is_map else [], is_map, mark, anchor))

    def end(self) -> None:
        f = self.stack.pop()
        self.doc.positions[id(f.container)] = f.lines
        if f.anchor is not None:
            self.anchors[f.anchor] = (f.container, _size(f.container))
        self.add(f.container, f.mark)

    def alias(self, name: str, mark: tuple[int, int]) -> None:
        if name not in self.anchors:
            raise YamlProblem(*mark, f"unknown (or self-referencing) anchor {name!r}")
        value, size = self.anchors[name]
        self.decoded += size
        self.aliased += size
        if (
            self.aliased > 100
            and self.decoded > 1000
            and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
        ):
            raise YamlProblem(
                *mark, "document contains excessive aliasing (an alias bomb?); kubectl refuses it"
            )
        self.add(value, mark)


def parse_stream(text: str) -> list[RawDocument]:
    """Every document of a YAML text as JSON-ready data (str keys; None, bool, int, float,
    str, list, dict values); YamlProblem at the first mistake."""
    from yaml import (
        AliasEvent,
        DocumentEndEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    docs: list[RawDocument] = []
    loader = yaml.CSafeLoader(text)
    get_event: Callable[[], Any] = loader.get_event  # events are duck-typed in the hot loop
    b: _Builder | None = None
    doc_start = 0
    resolved: dict[str, Any] = {}
    try:
        while True:
            ev = get_event()
            if ev is None:
                break
            cls = ev.__class__
            if cls is ScalarEvent:
                assert b is not None
                m = ev.start_mark
                mark = (m.line + 1, m.column + 1)
                tag, style, text_value = ev.tag, ev.style, ev.value
                word = None
                if tag is None and not style:
                    if (
                        text_value == "<<"
                        and b.stack
                        and b.stack[-1].is_map
                        and b.stack[-1].key is _NO_KEY
                    ):
                        b.stack[-1].key = _MERGE
                        b.stack[-1].key_mark = mark
                        continue
                    value = resolved.get(text_value, _UNSEEN)
                    if value is _UNSEEN:  # keys and enum values repeat: resolve each once
                        value = resolve_plain(text_value)
                        if len(resolved) < 4096:
                            resolved[text_value] = value
                    vcls = value.__class__
                    if vcls is bool:
                        if text_value in YAML11_ONLY_BOOLEANS:
                            word = text_value
                    elif vcls is float:
                        value = _finite(value, *mark)
                elif tag is None or tag == "!":
                    value = text_value
                else:
                    value = _tagged(tag, text_value, *mark)
                    if value.__class__ is float:
                        value = _finite(value, *mark)
                b.decoded += 1
                if ev.anchor is not None:
                    b.anchors[ev.anchor] = (value, 1)
                b.add(value, mark, word)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                assert b is not None
                m = ev.start_mark
                b.start(cls is MappingStartEvent, (m.line + 1, m.column + 1), ev.anchor)
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                assert b is not None
                b.end()
                if ev.start_mark.index - doc_start > MAX_DOCUMENT_CHARS:
                    raise YamlProblem(
                        b.doc.line,
                        1,
                        f"document is over {MAX_DOCUMENT_CHARS // (1 << 20)} MiB of YAML; the "
                        "apiserver stores objects of 1.5 MiB at most",
                    )
            elif cls is AliasEvent:
                assert b is not None
                m = ev.start_mark
                b.alias(ev.anchor, (m.line + 1, m.column + 1))
            elif cls is DocumentStartEvent:
                doc_start = ev.start_mark.index
                b = _Builder(ev.start_mark.line + 1)
            elif cls is DocumentEndEvent:
                assert b is not None
                if b.has_root and b.doc.data is not None:
                    root = b.doc.positions.get(id(b.doc.data))
                    if root:  # the document starts at its first key, not at `---`
                        b.doc.line = min(line for line, _ in root.values())
                    docs.append(b.doc)
                b = None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None)
        context = getattr(e, "context", None)
        reason = (f"{problem} ({context})" if context else str(problem)) if problem else str(e)
        if where is None:
            raise YamlProblem(0, 0, reason.splitlines()[0]) from None
        raise YamlProblem(where.line + 1, where.column + 1, reason) from None
    return docs
