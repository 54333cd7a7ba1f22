"""The batch drift report: a ranked table and a picture per drifted feature, in a browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import browser_page, needs_chromium

from mlcontainer.inference.driftcheck import batch_drift
from mlcontainer.inference.driftreport import render_report
from mlcontainer.inference.predictor import load_predictor
from mlcontainer.training.workflow import TrainOutcome


@pytest.fixture(scope="module")
def shifted_report(
    penguins_outcome: TrainOutcome, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    frame = penguins_outcome.dataset.X.sample(2_000, replace=True, random_state=1)
    frame["body_mass_g"] += 1_500
    frame["island"] = "<script>alert(1)</script>"
    folder = tmp_path_factory.mktemp("drift")
    data = folder / "batch.csv"
    frame.to_csv(data, index=False)
    predictor = load_predictor(penguins_outcome.output, threads=1)
    result = batch_drift(predictor, data)
    page = folder / "report.html"
    page.write_text(
        render_report(result, model=predictor.name, source="batch.csv", fail_above=0.25)
    )
    return page


def test_the_report_pictures_each_drifted_feature_only(shifted_report: Path) -> None:
    html = shifted_report.read_text()
    assert html.count("<img ") == 3  # body_mass_g, island and the prediction
    assert 'alt="Share of rows per bin of body_mass_g' in html
    assert 'alt="Share of rows per bin of bill_length_mm' not in html
    assert "<script>alert" not in html  # a category is text, never markup


@needs_chromium
def test_the_report_opens_in_a_browser_with_its_pictures(shifted_report: Path) -> None:
    with browser_page() as page:
        page.goto(shifted_report.as_uri())
        assert page.locator("h1").inner_text().startswith("Drift of")
        sizes = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(sizes) == 3
        assert all(done and w > 100 and h > 100 for done, w, h in sizes), sizes
        first = page.locator("tbody tr").first.inner_text()
        assert "body_mass_g" in first or "island" in first
