"""The welcome page in headless Chromium: a pre-filled form, held-out examples, the prediction
with probability bars and the typed values against the training range, without leaving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from serving_support import PENGUIN_ROW
from support import browser_page, needs_chromium, serve_app

from mlcontainer.core.config import Settings
from mlcontainer.inference.predictor import Predictor
from mlcontainer.serving.app import create_app
from mlcontainer.serving.page import top_features

pytestmark = needs_chromium


@pytest.fixture
def page_url(penguins_app: Flask) -> Iterator[str]:
    with serve_app(penguins_app) as url:
        yield url


def _form_values(page: Any) -> dict[str, str]:
    return page.eval_on_selector(
        "#predict-form",
        "f => Object.fromEntries([...f.elements].filter(e => e.name).map(e => [e.name, e.value]))",
    )


def _shown(value: object) -> str:
    """A value as the form shows it (JavaScript's String(), '' for a missing value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_page_form_starts_with_the_typical_training_row(
    page_url: str, penguins_predictor: Predictor
) -> None:
    examples = penguins_predictor.manifest.examples
    assert examples is not None
    with browser_page() as page:
        page.goto(page_url)
        typical = {k: _shown(v) for k, v in examples.typical.items()}
        assert _form_values(page) == typical
        # Typed over, then put back by the button.
        page.fill("input[name='bill_length_mm']", "99")
        page.click("#typical-button")
        assert _form_values(page) == typical


def test_page_held_out_example_fills_the_form_and_shows_probability_bars(
    page_url: str, penguins_predictor: Predictor, tmp_path: Path
) -> None:
    examples = penguins_predictor.manifest.examples
    assert examples is not None
    first = examples.held_out[0]
    with browser_page() as page:
        page.goto(page_url)
        page.click("#example-button")  # fills the form and submits it
        page.wait_for_selector("#probabilities")
        assert _form_values(page) == {k: _shown(v) for k, v in first.values.items()}
        assert f"true class: {first.target}" in page.locator("#example-note").inner_text()
        want = penguins_predictor.predict_records([first.values])
        assert page.locator("#prediction").inner_text() == str(want.labels[0])
        shown = [float(t) for t in page.locator("#probabilities td.p").all_inner_texts()]
        widths = page.eval_on_selector_all(
            "#probabilities .bar", "bars => bars.map(b => parseFloat(b.style.width))"
        )
        assert len(widths) == 3
        assert widths == pytest.approx([100 * p for p in shown], abs=0.06)
        assert sum(widths) == pytest.approx(100, abs=0.2)
        top = page.locator("#ranges th").all_inner_texts()[4:]  # after the header row
        assert top == top_features(penguins_predictor)
        page.screenshot(path=str(tmp_path / "page-held-out.png"), full_page=True)
        page.click("#example-button")  # the next held-out row
        page.wait_for_function(
            "t => !document.querySelector('#example-note').textContent.includes(t)",
            arg="row 1 of",
        )
        assert "row 2 of" in page.locator("#example-note").inner_text()


def test_page_says_when_a_typed_value_is_outside_the_training_range(
    page_url: str, penguins_predictor: Predictor
) -> None:
    examples = penguins_predictor.manifest.examples
    assert examples is not None
    name = next(n for n in top_features(penguins_predictor) if n in examples.spreads)
    with browser_page() as page:
        page.goto(page_url)
        page.fill(f"input[name='{name}']", str(examples.spreads[name].max * 10 + 1))
        page.click("button[type='submit']")
        page.wait_for_selector("#ranges")
        row = page.locator("#ranges tr", has_text=name)
        assert "outside the training range" in row.inner_text()
        assert row.locator(".status-outside").count() == 1


@pytest.mark.slow
def test_page_form_predicts_in_place(page_url: str, tmp_path: Path) -> None:
    with browser_page() as page:
        page.goto(page_url)
        assert "penguins-random_forest" in page.locator("h1").inner_text()
        assert "accuracy" in page.locator("#metrics th").all_inner_texts()
        assert page.locator("img[alt^='Confusion matrix']").evaluate("i => i.naturalWidth") > 0
        page.select_option("select[name='island']", "Biscoe")
        page.fill("input[name='bill_length_mm']", "47.5")
        page.fill("input[name='bill_depth_mm']", "14.2")
        page.fill("input[name='flipper_length_mm']", "215")
        page.fill("input[name='body_mass_g']", "5000")
        page.select_option("select[name='sex']", "male")
        page.fill("input[name='year']", "2008")
        page.click("button[type='submit']")
        page.wait_for_selector("#prediction")
        assert page.locator("#prediction").inner_text() == "Gentoo"
        probabilities = page.locator("#probabilities th").all_inner_texts()
        assert probabilities == ["Adelie", "Chinstrap", "Gentoo"]
        assert page.url == page_url  # the answer arrived without leaving the page
        page.fill("input[name='body_mass_g']", "")  # optional: sent as a missing value
        page.click("button[type='submit']")
        page.wait_for_function("!document.querySelector('#result').textContent.includes('…')")
        assert page.locator("#prediction").inner_text() == "Gentoo"
        page.screenshot(path=str(tmp_path / "page.png"))


@pytest.mark.slow
def test_page_shows_the_same_prediction_under_onnx_as_the_sklearn_predict(
    penguins_model_dir: Path,
) -> None:
    row = {**PENGUIN_ROW, "sex": None}
    sklearn_app = create_app(Settings(model_dir=penguins_model_dir, runtime="sklearn"))
    want = sklearn_app.test_client().post("/predict", json={"instances": [row]}).get_json()
    onnx_app = create_app(Settings(model_dir=penguins_model_dir, runtime="onnx"))
    with serve_app(onnx_app) as url, browser_page() as page:
        page.goto(url)
        assert page.locator("#runtime").inner_text() == "onnx"
        for name, value in row.items():
            selector = f"[name='{name}']"
            if page.locator(f"select{selector}").count():
                page.select_option(f"select{selector}", "" if value is None else str(value))
            else:
                page.fill(f"input{selector}", "" if value is None else str(value))
        page.click("button[type='submit']")
        page.wait_for_selector("#prediction")
        assert page.locator("#prediction").inner_text() == want["predictions"][0]
        shown = [float(t) for t in page.locator("#probabilities td.p").all_inner_texts()]
        expected = list(want["probabilities"][0].values())
        # Shown with 4 decimals: within rounding (5e-5) plus the runtimes' tolerance (1e-4).
        assert all(abs(a - b) <= 1.5e-4 for a, b in zip(shown, expected, strict=True))


@pytest.mark.slow
def test_page_of_a_regressor_shows_the_predicted_number(
    diabetes_model_dir: Path, tmp_path: Path
) -> None:
    from mlcontainer.training.data.dataset import load_dataset

    row = load_dataset("diabetes").X.iloc[0].to_dict()
    app = create_app(Settings(model_dir=diabetes_model_dir))
    want = app.test_client().post("/predict", json={"instances": [row]}).get_json()
    (value,) = want["predictions"]
    with serve_app(app) as url, browser_page() as page:
        page.goto(url)
        assert "r2" in page.locator("#metrics th").all_inner_texts()
        assert page.locator("img[alt^='Confusion matrix']").count() == 0
        assert "Predicts a number: target" in page.content()
        for name, cell in row.items():
            page.fill(f"input[name='{name}']", repr(cell))
        page.click("button[type='submit']")
        page.wait_for_selector("#prediction")
        assert float(page.locator("#prediction").inner_text()) == pytest.approx(value, rel=1e-5)
        assert page.locator("#probabilities").count() == 0
        page.screenshot(path=str(tmp_path / "regressor-page.png"))
