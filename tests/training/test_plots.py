"""Pictures: the confusion matrix and a regressor's three plots, byte-stable PNGs."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from mlcontainer.training.plots import confusion_matrix_png, regression_pngs


def test_confusion_matrix_png_is_a_png_and_byte_stable() -> None:
    one = confusion_matrix_png([[3, 1], [0, 4]], ["no", "yes"])
    two = confusion_matrix_png([[3, 1], [0, 4]], ["no", "yes"])
    assert one.startswith(b"\x89PNG\r\n\x1a\n")
    assert one == two
    assert confusion_matrix_png([[3, 1], [1, 4]], ["no", "yes"]) != one


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def test_confusion_matrix_png_grows_with_the_classes_and_stays_bounded() -> None:
    small = _png_size(confusion_matrix_png([[3, 1], [0, 4]], ["no", "yes"]))
    ten = _png_size(confusion_matrix_png(np.eye(10, dtype=int).tolist(), list(range(10))))
    long_names = ["x" * 500, "y" * 500]
    long = _png_size(confusion_matrix_png([[3, 1], [0, 4]], long_names))
    assert small[0] < ten[0]
    assert small[1] < ten[1]
    assert max(long) < 600  # names are cut, not drawn at full length


def test_confusion_matrix_png_draws_an_all_zero_matrix() -> None:
    assert _png_size(confusion_matrix_png([[0, 0], [0, 0]], [0, 1]))[0] > 0


def test_confusion_matrix_png_does_not_import_matplotlib() -> None:
    code = (
        "import sys\n"
        "from mlcontainer.training.plots import confusion_matrix_png\n"
        "confusion_matrix_png([[1, 0], [0, 1]], ['a', 'b'])\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_regressor_gets_three_byte_stable_pictures() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(150, 70, size=89)
    predicted = truth + rng.normal(0, 40, size=89)
    one = regression_pngs(truth.tolist(), predicted.tolist())
    assert list(one) == ["predicted_vs_actual", "residuals", "residual_histogram"]
    assert all(_png_size(png) == (520, 440) for png in one.values())
    assert regression_pngs(truth.tolist(), predicted.tolist()) == one
    other = regression_pngs(truth.tolist(), (predicted + 1).tolist())
    assert all(other[k] != one[k] for k in one)


def test_a_constant_prediction_and_two_rows_still_draw() -> None:
    pictures = regression_pngs([1.0, 3.0], [2.0, 2.0])  # the baseline on a tiny test split
    assert all(_png_size(png)[0] > 0 for png in pictures.values())
