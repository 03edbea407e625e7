"""The trees adapter's GPU path (TorchForest): the same predictions as XGBoost itself.

TorchForest is plain torch, so it is checked here on the CPU; on a GPU instance the adapter runs
the same code on the instance's device (bench/dataplane measures that on an H200).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
xgboost = pytest.importorskip("xgboost")

ADAPTER = Path(__file__).resolve().parent.parent / "operator/inferline/render/adapters/adapter.py"


@pytest.fixture(scope="module")
def adapter() -> types.ModuleType:
    # The adapter imports Triton's python-backend module at load; TorchForest never uses it.
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("pb_utils_stand_in"))
    spec = importlib.util.spec_from_file_location("inferline_adapter_under_test", ADAPTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = 3 * x[:, 0] - x[:, 1] ** 2 + np.sin(2 * x[:, 2]) + 0.1 * rng.normal(size=rows)
    x[rng.random(size=x.shape) < 0.05] = np.nan  # missing values take the default branch
    return x, y


@pytest.mark.parametrize(
    "params, rounds",
    [
        # A random forest, as the benchmark's: parallel deep trees in one round.
        (
            {
                "num_parallel_tree": 20,
                "max_depth": 12,
                "learning_rate": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.5,
            },
            1,
        ),
        ({"max_depth": 5, "learning_rate": 0.3}, 20),  # boosted trees, base_score included
    ],
)
def test_torch_forest_matches_xgboost(adapter, tmp_path, params, rounds) -> None:
    x, y = _data(1500, 20, seed=0)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "tree_method": "exact", "seed": 0, **params},
        xgboost.DMatrix(x, label=y, missing=np.nan),
        num_boost_round=rounds,
    )
    path = tmp_path / "model.json"
    booster.save_model(str(path))
    forest = adapter.TorchForest.from_xgboost_json(str(path), torch.device("cpu"))
    assert forest is not None
    assert forest.depth == max(_depths(path))

    x_test, _ = _data(500, 20, seed=1)
    want = booster.inplace_predict(x_test).reshape(-1, 1)
    got = forest.predict(torch.from_numpy(x_test)).numpy()
    assert got.shape == (500, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_torch_forest_leaves_classifiers_to_xgboost(adapter, tmp_path) -> None:
    x, y = _data(500, 8, seed=2)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(x, label=(y > 0).astype(np.float32)),
        num_boost_round=5,
    )
    path = tmp_path / "clf.json"
    booster.save_model(str(path))
    assert adapter.TorchForest.from_xgboost_json(str(path), torch.device("cpu")) is None


def _depths(path: Path) -> list[int]:
    import json

    trees = json.loads(path.read_text())["learner"]["gradient_booster"]["model"]["trees"]
    out = []
    for t in trees:
        depth = {0: 0}
        children = zip(t["left_children"], t["right_children"], strict=True)
        for node, pair in enumerate(children):
            for child in pair:
                if child >= 0:
                    depth[child] = depth[node] + 1
        out.append(max(depth.values()))
    return out
