"""report.html: one self-contained page with every section and picture of the task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import browser_page, needs_chromium

from mlcontainer.core.artifacts import MANIFEST_FILE, REPORT_FILE
from mlcontainer.training.report.report import SECTIONS
from mlcontainer.training.search.metrics import METRICS

#: The pictures each kind of model's report holds, by figure name.
PICTURES = {
    "binary": [
        "fold_scores", "confusion_matrix", "roc_curve", "precision_recall_curve",
        "calibration_curve", "permutation_importance",
    ],
    "multiclass": [
        "fold_scores", "confusion_matrix", "roc_curve", "precision_recall_curve",
        "calibration_curve", "permutation_importance",
    ],
    "regression": [
        "fold_scores", "predicted_vs_actual", "residuals", "residual_histogram",
        "permutation_importance",
    ],
}  # fmt: skip
FIXTURES = {"binary": "uci_model_dir", "multiclass": "penguins_model_dir"}
FIXTURES["regression"] = "diabetes_model_dir"


@pytest.fixture(params=list(FIXTURES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def model_dir(kind: str, request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(FIXTURES[kind])
    return path


def _manifest(model_dir: Path) -> dict[str, object]:
    return dict(json.loads((model_dir / MANIFEST_FILE).read_text()))


def test_the_report_has_every_section_and_the_pictures_of_its_task(
    kind: str, model_dir: Path
) -> None:
    html = (model_dir / REPORT_FILE).read_text()
    for section, heading in SECTIONS:
        assert f'<h2 id="{section}">{heading}</h2>' in html
    figures = re.findall(r'<figure id="figure-([a-z_]+)"', html)
    assert figures == PICTURES[kind]
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing to fetch
    captions = re.findall(r"<figcaption><b>([^<]+)\.</b> ([^<]+)</figcaption>", html)
    assert len(captions) == len(figures)
    assert all(len(caption) > 40 for _, caption in captions)


def test_the_report_profiles_every_column_and_the_intake_recipe(model_dir: Path) -> None:
    manifest = _manifest(model_dir)
    html = (model_dir / REPORT_FILE).read_text()
    profile = html.split('<table id="profile">', 1)[1].split("</table>", 1)[0]
    features = manifest["schema"]["features"]  # type: ignore[index]
    assert profile.count("<tr>") == 1 + len(features)
    for feature in features:
        assert f'<tr><td>{feature["name"]}</td><td class="text">{feature["type"]}</td>' in profile
    assert '<table id="recipe">' in html
    assert "dropped columns" in html


def test_the_report_shows_every_test_metric_and_the_selected_models_parameters(
    model_dir: Path,
) -> None:
    manifest = _manifest(model_dir)
    html = (model_dir / REPORT_FILE).read_text()
    table = html.split('<table id="metrics">', 1)[1].split("</table>", 1)[0]
    for name, value in manifest["metrics"].items():  # type: ignore[attr-defined]
        shown = "n/a" if value is None else f"{value:.4f}"
        assert f"<tr><td>{METRICS[name].label}</td><td>{shown}</td></tr>" in table
    params = html.split('<table id="parameters">', 1)[1].split("</table>", 1)[0]
    assert "random_state" in params
    leaderboard = html.split('<table id="leaderboard">', 1)[1].split("</table>", 1)[0]
    assert "<td>baseline" in leaderboard


def test_a_classifiers_report_has_pr_auc_and_brier(penguins_model_dir: Path) -> None:
    html = (penguins_model_dir / REPORT_FILE).read_text()
    assert "<td>PR AUC (average precision)</td>" in html
    assert "<td>Brier score</td>" in html


def test_a_binary_report_states_the_chosen_threshold_and_calibration(uci_model_dir: Path) -> None:
    decision = _manifest(uci_model_dir)["decision"]
    assert isinstance(decision, dict)
    html = (uci_model_dir / REPORT_FILE).read_text()
    assert f"The chosen threshold: <b>{decision['threshold']:.3f}</b>" in html
    assert ('id="calibration"' in html) == (decision["calibration"] is not None)


def test_the_importance_table_lists_original_columns_largest_first(model_dir: Path) -> None:
    manifest = _manifest(model_dir)
    importance = manifest["importance"]
    assert isinstance(importance, dict)
    names = [f["name"] for f in manifest["schema"]["features"]]  # type: ignore[index]
    columns = [c["column"] for c in importance["columns"]]
    assert set(columns) <= set(names)  # original columns, never one-hot parts
    assert len(columns) == min(15, len(names))
    means = [c["mean"] for c in importance["columns"]]
    assert means == sorted(means, reverse=True)


@needs_chromium
def test_the_report_opens_in_chromium_with_every_picture_loaded(
    kind: str, model_dir: Path, tmp_path: Path
) -> None:
    with browser_page() as page:
        page.goto((model_dir / REPORT_FILE).as_uri())
        ids = page.eval_on_selector_all("h2", "hs => hs.map(h => h.id)")
        assert ids == [section for section, _ in SECTIONS]
        widths = page.eval_on_selector_all("figure img", "is => is.map(i => i.naturalWidth)")
        assert len(widths) == len(PICTURES[kind])
        assert all(w > 0 for w in widths)
        captions = page.locator("figcaption").all_inner_texts()
        assert len(captions) == len(widths)
        assert all(len(c) > 40 for c in captions)
        page.screenshot(path=str(tmp_path / f"report-{kind}.png"), full_page=True)
