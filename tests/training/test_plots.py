"""Pictures: the confusion matrix as a byte-stable PNG of bounded size."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from mlcontainer.training.plots import confusion_matrix_png


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
