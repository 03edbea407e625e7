"""Reading YAML as kubectl does, and surviving YAML written to hurt.

Scalars resolve as go-yaml v2 resolves them and numbers arrive as kubectl's JSON round trip
delivers them (e2e/test_parity.py checks the same probes against the real kubectl); hostile
input ends in one line, in bounded time, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferline.api.load import MAX_OBJECT_BYTES, load_text
from inferline.api.problems import Check
from inferline.api.yamlparse import YamlProblem, parse_stream, resolve_plain

from ..conftest import EXAMPLES, run_cli


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", 8),
        ("8.0", 8.0),
        ("010", 8),  # YAML 1.1 octal
        ("0o10", 8),
        ("0x10", 16),
        ("08", 8.0),  # not octal: Go's ParseInt fails, ParseFloat reads 8
        ("1_000", 1000),
        ("+5", 5),
        ("-0b11", -3),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("y", True),
        ("Yes", True),
        ("on", True),
        ("N", False),
        ("off", False),
        ("true", True),
        ("~", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),  # a timestamp stays text
        ("1:20", "1:20"),  # no sexagesimal numbers in go-yaml v2
        ("0x", "0x"),
        ("yes please", "yes please"),
        ("9223372036854775807", (1 << 63) - 1),
    ],
)
def test_plain_scalars_resolve_as_go_yaml_v2(text: str, value: object) -> None:
    got = resolve_plain(text)
    assert got == value and type(got) is type(value)


def test_numbers_arrive_as_after_kubectls_json_round_trip() -> None:
    (doc,) = parse_stream("a: 8.0\nb: 8.5\nc: !!float 3\nd: 1e21\n")
    assert doc.data == {"a": 8, "b": 8.5, "c": 3, "d": 1e21}
    assert type(doc.data["a"]) is int and type(doc.data["d"]) is float


def test_keys_become_strings_as_kubectl_sends_them() -> None:
    (doc,) = parse_stream("1: a\ntrue: b\n1.5: c\ny: d\n")
    assert doc.data == {"1": "a", "true": "b", "1.5": "c"} | {"true": "d"}
    (line, _, message) = doc.renamed_keys[0]
    assert line == 4 and "a bare y key is the boolean true to kubectl" in message


def test_positions_point_at_each_field() -> None:
    (doc,) = parse_stream("# c\na:\n  b: [1, 2]\n  c: {d: x}\n")
    assert doc.line == 2
    assert doc.position(("a", "b", 1)) == (3, 10)
    assert doc.position(("a", "c", "d")) == (4, 7)
    assert doc.position(("a", "nope")) == (2, 1)  # the nearest parent


def test_schema_errors_name_the_line_of_the_field(tmp_path: Path) -> None:
    text = (
        (EXAMPLES / "minimal/pipeline.yaml")
        .read_text()
        .replace("maxBatchSize: 8\n  inputs", 'maxBatchSize: "8"\n  inputs')
    )
    loaded = load_text(text, tmp_path / "p.yaml")
    (problem,) = loaded.problems
    line = text.splitlines().index('  maxBatchSize: "8"') + 1
    assert problem.where == f"{tmp_path / 'p.yaml'}:{line}"
    assert problem.message == "must be an integer; got the string '8'"


def test_duplicate_keys_name_both_lines_and_the_last_wins() -> None:
    loaded = load_text(
        "apiVersion: inferline.dev/v1alpha1\nkind: Model\nkind: Backend\nmetadata: {name: m}\n",
        Path("d.yaml"),
    )
    dup = [p for p in loaded.problems if p.check is Check.DUPLICATE_KEY]
    assert [str(p) for p in dup] == [
        "d.yaml:3:1: duplicate key 'kind': also set on line 2; kubectl silently keeps the last "
        "one: keep one"
    ]
    # The rest is judged as kubectl would send it: kind Backend (missing its spec).
    assert any(p.obj == "Backend/m" and p.path == "spec" for p in loaded.problems)


def _one_line_error(text: str, tmp_path: Path, timeout: float = 20) -> str:
    f = tmp_path / "evil.yaml"
    f.write_text(text)
    r = run_cli("validate", str(f), timeout=timeout)  # bounded: a hang fails the test
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[-1] == "invalid: 1 problem", r.stderr[-2000:]
    return lines[0]


def test_ten_thousand_nested_brackets(tmp_path: Path) -> None:
    line = _one_line_error("[" * 10_000, tmp_path)
    assert "invalid YAML: exceeded maximum nesting depth" in line


def test_deep_block_nesting(tmp_path: Path) -> None:
    text = "".join(f"{' ' * i}a:\n" for i in range(500)) + " " * 500 + "a: 1\n"
    line = _one_line_error(text, tmp_path)
    assert "nested deeper than 100 levels" in line


def test_an_alias_bomb(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    line = _one_line_error("\n".join(lines) + "\n", tmp_path)
    assert "excessive aliasing" in line


def test_a_huge_document(tmp_path: Path) -> None:
    text = "a:\n" + "".join(f"  - {'x' * 100}\n" for i in range(70_000))
    line = _one_line_error(text, tmp_path)
    assert "document is over 6 MiB of YAML" in line


def test_an_object_over_the_apiservers_limit(tmp_path: Path) -> None:
    env = "".join(f"    - {{name: V{i}, value: {'v' * 30000}}}\n" for i in range(60))
    text = (
        "apiVersion: inferline.dev/v1alpha1\nkind: Backend\nmetadata: {name: big}\nspec:\n"
        f"  image: x\n  formats: [python]\n  env:\n{env}"
    )
    line = _one_line_error(text, tmp_path)
    size = len(json.dumps(parse_stream(text)[0].data, separators=(",", ":")))
    assert f"the object is {size} bytes as JSON" in line
    assert f"at most {MAX_OBJECT_BYTES} bytes (1.5 MiB" in line


def test_not_json_numbers(tmp_path: Path) -> None:
    with pytest.raises(YamlProblem, match="not a number JSON can carry"):
        parse_stream("a: .nan\n")


def test_validate_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from inferline.cli.app import app\n"
        "try:\n"
        f"    app(['validate', {str(EXAMPLES)!r}], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'numpy', 'tritonclient', 'torch', 'google.protobuf', 'kopf', 'kubernetes',"
        " 'fsspec', 'grpc'}\n"
        "print(sorted(m for m in sys.modules if m in heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
    assert "valid:" in r.stdout
