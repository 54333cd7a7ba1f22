"""The model card: README.md in the model folder, a YAML header and a Markdown body."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcontainer.core.artifacts import CARD_FILE, MANIFEST_FILE, MODEL_FILE, sha256_bytes
from mlcontainer.training.report.card import front_matter


def _card(model_dir: Path) -> tuple[dict[str, object], str]:
    text = (model_dir / CARD_FILE).read_text()
    match = re.fullmatch(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert match is not None, text[:200]
    return yaml.safe_load(match.group(1)), match.group(2)


@pytest.fixture(params=["iris_model_dir", "uci_model_dir", "diabetes_model_dir"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    """A multiclass, a binary and a regression model folder."""
    path: Path = request.getfixturevalue(request.param)
    return path


def test_the_card_is_hashed_in_the_manifest_like_the_other_files(model_dir: Path) -> None:
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    data = (model_dir / CARD_FILE).read_bytes()
    assert manifest["files"][CARD_FILE] == {"sha256": sha256_bytes(data), "bytes": len(data)}


def test_the_cards_header_names_the_task_library_and_test_metrics(model_dir: Path) -> None:
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    header, _ = _card(model_dir)
    task = manifest["schema"]["task"]
    assert header["library_name"] == "sklearn"
    assert header["pipeline_tag"] == f"tabular-{task}"
    assert header["model_file"] == MODEL_FILE
    (entry,) = header["model-index"]  # type: ignore[misc]
    (result,) = entry["results"]
    assert result["task"]["name"] == task
    assert result["dataset"]["name"] == manifest["dataset"]["name"]
    shown = {m["type"]: m["value"] for m in result["metrics"]}
    finite = {k: v for k, v in manifest["metrics"].items() if v is not None}
    assert shown == finite
    assert header["metrics"] == list(finite)


def test_the_cards_body_has_each_section_and_the_metrics_as_the_manifest_has_them(
    model_dir: Path,
) -> None:
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    _, body = _card(model_dir)
    for heading in (
        "# Model description",
        "## Intended uses & limitations",
        "## Training data",
        "## Training procedure",
        "### Hyperparameters",
        "## Evaluation results",
        "# How to get started with the model",
    ):
        assert re.search(rf"^{re.escape(heading)}$", body, re.M), heading
    for value in manifest["metrics"].values():
        if value is not None:
            assert f"{value:.4f}" in body
    assert manifest["selection"]["model"] in body
    assert "mlcontainer serve --model ." in body


def test_the_cards_python_snippet_loads_the_pipeline_with_an_explicit_trusted_list(
    uci_model_dir: Path,
) -> None:
    _, body = _card(uci_model_dir)
    (code,) = re.findall(r"```python\n(.*?)```", body, re.S)
    assert "get_untrusted_types" not in code  # the trusted list never comes from the file
    check = "\nprint(type(pipeline).__name__, len(pipeline.steps))"
    done = subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=uci_model_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("Pipeline ")


def test_the_card_of_a_binary_model_states_its_threshold(uci_model_dir: Path) -> None:
    manifest = json.loads((uci_model_dir / MANIFEST_FILE).read_text())
    _, body = _card(uci_model_dir)
    decision = manifest["decision"]
    assert decision is not None
    assert f"at least {decision['threshold']:.3g}" in body


def test_the_card_lists_the_training_warnings_as_limitations(uci_model_dir: Path) -> None:
    manifest = json.loads((uci_model_dir / MANIFEST_FILE).read_text())
    _, body = _card(uci_model_dir)
    warnings = manifest["dataset"]["warnings"] + manifest["selection"]["warnings"]
    limits = body.split("## Intended uses & limitations", 1)[1].split("\n## ", 1)[0]
    if warnings:
        assert all(w in limits for w in warnings)
    else:
        assert "none were flagged" in limits


@pytest.mark.parametrize(
    "name",
    ['a: "b"', "colon: and # hash", "naïve — ünïcode", "emoji 🙂", "- dash", "yes", "null", ""],
)
def test_the_header_reads_back_as_written_whatever_the_names_hold(name: str) -> None:
    data = {"name": name, name or "empty": [1, 2.5, None, True], "nested": [{"k": name}]}
    text = front_matter(data)
    assert text.startswith("---\n")
    assert text.endswith("\n---\n")
    assert text.isascii()
    assert yaml.safe_load(text.strip().strip("-")) == data
