"""values.yaml is documented line by line, and values.schema.json rejects what it does not know."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from .helm import CHART, RELEASE, SCENARIOS, helm, values_file

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
# Kubernetes structures passed through as they are (the apiserver validates them).
PASSTHROUGH = {"podSecurityContext", "securityContext", "affinity", "tolerations", "global"}
# Objects whose schema allows more keys than values.yaml sets (resources: ephemeral-storage).
OPEN_ENDED = {"requests", "limits"}


def test_every_value_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^(\s*)([\w.-]+):")
    missing = []
    for i, line in enumerate(lines):
        m = key.match(line)
        if not m:
            continue
        above = lines[i - 1].strip() if i else ""
        if not above.startswith("#"):
            missing.append(f"values.yaml:{i + 1}: {m.group(2)}")
    assert missing == []


def test_the_defaults_and_every_scenario_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)
    for scenario in SCENARIOS:
        merged = _merge(VALUES, yaml.safe_load(values_file(scenario).read_text()) or {})
        jsonschema.Draft7Validator(SCHEMA).validate(merged)


def test_the_schema_is_strict_and_covers_exactly_values_yaml() -> None:
    def walk(schema: dict[str, Any], values: Any, path: str) -> None:
        if schema.get("type") != "object" or "properties" not in schema:
            return
        assert schema.get("additionalProperties") is False, f"{path or '.'}: not strict"
        known, given = set(schema["properties"]) - PASSTHROUGH, set(values) - PASSTHROUGH
        if path.rsplit(".", 1)[-1] in OPEN_ENDED:
            assert given <= known, path
        else:
            assert known == given, path
        for name, sub in schema["properties"].items():
            assert sub.get("description") or name in OPEN_ENDED, f"{path}.{name}: no description"
            if name in values and name not in PASSTHROUGH:
                walk(sub, values[name], f"{path}.{name}")

    walk(SCHEMA, VALUES, "")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # A typo at the top level, and one level down.
        (["--set", "watchNamespace={a}"], "additional properties 'watchNamespace' not allowed"),
        (["--set", "operator.worker=2"], "additional properties 'worker' not allowed"),
        (["--set", "serviceMonitor.enable=true"], "additional properties 'enable' not allowed"),
        # Wrong types and values.
        (["--set", "operator.workers=0"], "/operator/workers"),
        (["--set", "operator.logFormat=yaml"], "/operator/logFormat"),
        (["--set-string", "builtinBackends.enabled=yes"], "/builtinBackends/enabled"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "builtinBackends.images.tritonn=x"], "'tritonn' not allowed"),
    ],
)
def test_a_bad_value_fails_the_install_naming_it(args: list[str], expected: str) -> None:
    proc = helm("template", RELEASE, str(CHART), *args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert expected in proc.stderr, proc.stderr


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: _merge(base.get(k), over[k]) if k in base else over[k] for k in over} | {
            k: v for k, v in base.items() if k not in over
        }
    return over
