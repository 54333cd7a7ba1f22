"""Pictures: every one a titled, labelled, captioned, byte-stable PNG drawn with matplotlib."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from mlcontainer.training.report import plots
from mlcontainer.training.report.plots import Picture


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def _probabilities(n: int, classes: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Truth positions and probabilities that lean towards the truth, as a fair model's."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), truth] += 1.5
    proba = np.exp(logits)
    return truth, proba / proba.sum(axis=1, keepdims=True)


def _assert_readable(picture: Picture) -> None:
    ax = picture.figure.axes[0]
    assert ax.get_title() == picture.title, picture.name
    assert picture.title, picture.name
    assert ax.get_xlabel() == picture.xlabel, picture.name
    assert picture.xlabel, picture.name
    assert ax.get_ylabel() == picture.ylabel, picture.name
    assert picture.ylabel, picture.name
    assert len(picture.caption) > 40, picture.name
    assert "\n" not in picture.caption, picture.name
    width, height = _png_size(picture.png)
    assert 300 < width < 1000, (picture.name, width)
    assert 200 < height < 1000, (picture.name, height)


@pytest.mark.parametrize(
    "classes", [["no", "yes"], ["Adelie", "Chinstrap", "Gentoo"]], ids=["binary", "multiclass"]
)
def test_a_classifier_gets_its_curves_titled_labelled_and_byte_stable(
    classes: list[str],
) -> None:
    truth, proba = _probabilities(200, len(classes))
    labels = [classes[i] for i in truth]
    one = plots.classification_pictures(labels, proba, classes)
    assert [p.name for p in one] == ["roc_curve", "precision_recall_curve", "calibration_curve"]
    for picture in one:
        _assert_readable(picture)
    assert plots.classification_pictures(labels, proba, classes) == one
    shifted = np.roll(proba, 1, axis=0)
    other = plots.classification_pictures(labels, shifted, classes)
    assert all(a.png != b.png for a, b in zip(one, other, strict=True))


def _line(picture: Picture, label_start: str) -> tuple[np.ndarray, np.ndarray]:
    """The x and y data of the line whose legend label starts with ``label_start``."""
    lines = [ln for ln in picture.figure.axes[0].lines if ln.get_label().startswith(label_start)]
    assert len(lines) == 1, [ln.get_label() for ln in picture.figure.axes[0].lines]
    return np.asarray(lines[0].get_xdata(), float), np.asarray(lines[0].get_ydata(), float)


@pytest.mark.parametrize("k", [2, 3], ids=["binary", "multiclass"])
def test_the_curves_draw_sklearns_roc_precision_recall_and_calibration_data(k: int) -> None:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    classes = ["a", "b", "c"][:k]
    truth, proba = _probabilities(300, k, seed=5)
    roc, pr, calibration = plots.classification_pictures(
        [classes[i] for i in truth], proba, classes
    )
    # For two classes one curve, of the second class; otherwise each class against the rest.
    for j in [1] if k == 2 else range(k):
        is_pos = (truth == j).astype(int)
        fpr, tpr, _ = roc_curve(is_pos, proba[:, j])
        x, y = _line(roc, f"{classes[j]} (AUC")
        np.testing.assert_allclose(x, fpr)
        np.testing.assert_allclose(y, tpr)
        precision, recall, _ = precision_recall_curve(is_pos, proba[:, j])
        x, y = _line(pr, f"{classes[j]} (AP")
        np.testing.assert_allclose(x, recall)
        np.testing.assert_allclose(y, precision)
        observed, predicted = calibration_curve(is_pos, proba[:, j], n_bins=10)
        x, y = _line(calibration, classes[j])
        np.testing.assert_allclose(x, predicted)
        np.testing.assert_allclose(y, observed)
    if k == 2:
        assert not [ln for ln in roc.figure.axes[0].lines if ln.get_label().startswith("a (")]


def test_the_threshold_dot_sits_at_the_rates_the_threshold_gives() -> None:
    truth, proba = _probabilities(300, 2, seed=6)
    labels = [["no", "yes"][i] for i in truth]
    roc, pr, _ = plots.classification_pictures(labels, proba, ["no", "yes"], threshold=0.3)
    flagged = proba[:, 1] >= 0.3
    tpr = flagged[truth == 1].mean()
    assert _line(roc, "threshold 0.30 (chosen)") == ([flagged[truth == 0].mean()], [tpr])
    assert _line(pr, "threshold 0.30") == ([tpr], [(truth[flagged] == 1).mean()])
    default = plots.classification_pictures(labels, proba, ["no", "yes"])[0]
    assert _line(default, "threshold 0.50")[0] == [(proba[truth == 0, 1] >= 0.5).mean()]


def test_a_chosen_threshold_moves_the_marked_point() -> None:
    truth, proba = _probabilities(200, 2)
    labels = [["no", "yes"][i] for i in truth]
    default = plots.classification_pictures(labels, proba, ["no", "yes"])
    chosen = plots.classification_pictures(labels, proba, ["no", "yes"], threshold=0.3)
    assert default[0].png != chosen[0].png  # ROC
    assert default[1].png != chosen[1].png  # precision-recall
    assert default[2].png == chosen[2].png  # calibration has no threshold


def test_the_operating_point_is_what_the_threshold_predicts() -> None:
    from sklearn.metrics import confusion_matrix

    truth, proba = _probabilities(300, 2, seed=3)
    for threshold in (0.2, 0.5, 0.8):
        predicted = (proba[:, 1] >= threshold).astype(int)
        tn, fp, fn, tp = confusion_matrix(truth, predicted).ravel()
        fpr, tpr, precision = plots.operating_point(truth == 1, proba[:, 1], threshold)
        assert fpr == pytest.approx(fp / (fp + tn))
        assert tpr == pytest.approx(tp / (tp + fn))
        assert precision == pytest.approx(tp / (tp + fp))
    assert np.isnan(plots.operating_point(truth == 1, proba[:, 1], 1.1)[2])


def test_the_positive_class_chooses_the_curves_probability_column() -> None:
    truth, proba = _probabilities(200, 2, seed=1)
    labels = [["no", "yes"][i] for i in truth]
    second = plots.classification_pictures(labels, proba, ["no", "yes"])
    first = plots.classification_pictures(labels, proba, ["no", "yes"], positive="no")
    assert first[0].png != second[0].png
    assert "'no'" not in first[0].caption
    assert "no rows" in first[0].caption


def test_many_classes_draw_the_most_frequent_ten_and_say_so() -> None:
    truth, proba = _probabilities(400, 12, seed=2)
    classes = [f"c{i}" for i in range(12)]
    roc = plots.classification_pictures([classes[i] for i in truth], proba, classes)[0]
    assert "2 classes are not drawn" in roc.caption


def test_a_class_missing_from_the_test_rows_gets_no_curve_and_no_warning() -> None:
    truth, proba = _probabilities(90, 3, seed=4)
    truth[truth == 2] = 1  # no row of the third class: its curve is undefined
    classes = ["a", "b", "c"]
    pictures = plots.classification_pictures([classes[i] for i in truth], proba, classes)
    assert all(_png_size(p.png)[0] > 0 for p in pictures)
    assert "1 class is not drawn" in pictures[0].caption


def test_confusion_matrix_is_a_png_and_byte_stable() -> None:
    one = plots.confusion_matrix_picture([[3, 1], [0, 4]], ["no", "yes"])
    _assert_readable(one)
    assert one.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert plots.confusion_matrix_picture([[3, 1], [0, 4]], ["no", "yes"]) == one
    assert plots.confusion_matrix_picture([[3, 1], [1, 4]], ["no", "yes"]).png != one.png


def test_confusion_matrix_writes_each_count_in_its_cell() -> None:
    one = plots.confusion_matrix_picture([[3, 1], [0, 4]], ["no", "yes"])
    ax = one.figure.axes[0]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["no", "yes"]
    assert ax.get_ylabel() == "True label"


def test_confusion_matrix_grows_with_the_classes_and_stays_bounded() -> None:
    small = _png_size(plots.confusion_matrix_picture([[3, 1], [0, 4]], ["no", "yes"]).png)
    ten = _png_size(plots.confusion_matrix_picture(np.eye(10, dtype=int).tolist(), range(10)).png)
    long_names = ["x" * 500, "y" * 500]
    long = _png_size(plots.confusion_matrix_picture([[3, 1], [0, 4]], long_names).png)
    assert small[0] < ten[0]
    assert small[1] < ten[1]
    assert max(long) < 800  # names are cut, not drawn at full length


def test_confusion_matrix_draws_an_all_zero_matrix() -> None:
    assert _png_size(plots.confusion_matrix_picture([[0, 0], [0, 0]], [0, 1]).png)[0] > 0


def test_fold_scores_show_every_candidate_and_keep_a_far_baseline_readable() -> None:
    candidates = [
        ("svm", [0.97, 0.99, 1.0, 0.95, 0.98]),
        ("random_forest", [0.96, 0.97, None, 1.0, 0.98]),
        ("knn_that_failed", []),
        ("baseline", [0.2, 0.21, 0.2, 0.22, 0.2]),
    ]
    one = plots.fold_scores_picture(
        candidates, metric_label="F1 (macro)", greater_is_better=True, selected="svm"
    )
    _assert_readable(one)
    assert "higher is better" in one.xlabel
    lower = plots.fold_scores_picture(
        candidates, metric_label="RMSE", greater_is_better=False, selected="svm"
    )
    assert "lower is better" in lower.xlabel
    ax = one.figure.axes[0]
    # A row per candidate with scores, best first; each fold a point at its score.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["svm", "random_forest", "baseline"]
    from matplotlib.collections import PathCollection

    points = [
        c.get_offsets()[:, 0].tolist() for c in ax.collections if isinstance(c, PathCollection)
    ]
    assert points == [[0.97, 0.99, 1.0, 0.95, 0.98], [0.96, 0.97, 1.0, 0.98]]
    assert any("mean 0.206, off the scale" in t.get_text() for t in ax.texts)
    assert one.png != lower.png
    only_baseline = plots.fold_scores_picture(
        [("baseline", [0.3, 0.3])], metric_label="F1", greater_is_better=True, selected="baseline"
    )
    assert _png_size(only_baseline.png)[0] > 0


def test_importance_bars_are_drawn_for_negative_and_zero_drops() -> None:
    columns = [("proline", 0.06, 0.02), ("ash", 0.0, 0.0), ("malic_acid", -0.02, 0.01)]
    one = plots.importance_picture(columns, metric_label="F1", rows=36, repeats=5, total=3)
    _assert_readable(one)
    assert one.title == "Permutation importance (test split)"
    cut = plots.importance_picture(columns, metric_label="F1", rows=36, repeats=5, total=40)
    assert "top 3 of 40" in cut.title
    assert "36 test rows, 5 shuffles" in one.caption
    ax = one.figure.axes[0]
    assert [p.get_width() for p in ax.patches] == [0.06, 0.0, -0.02]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["proline", "ash", "malic_acid"]


def test_a_regressor_gets_three_byte_stable_pictures() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(150, 70, size=89)
    predicted = truth + rng.normal(0, 40, size=89)
    one = plots.regression_pictures(truth.tolist(), predicted.tolist())
    assert [p.name for p in one] == ["predicted_vs_actual", "residuals", "residual_histogram"]
    for picture in one:
        _assert_readable(picture)
    assert all(_png_size(p.png) == (520, 440) for p in one)
    scatter = one[0].figure.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(scatter, np.column_stack([truth, predicted]))
    residuals = one[1].figure.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(residuals, np.column_stack([predicted, predicted - truth]))
    assert sum(p.get_height() for p in one[2].figure.axes[0].patches) == 89
    assert plots.regression_pictures(truth.tolist(), predicted.tolist()) == one
    other = plots.regression_pictures(truth.tolist(), (predicted + 1).tolist())
    assert all(a.png != b.png for a, b in zip(one, other, strict=True))


def test_a_constant_prediction_and_two_rows_still_draw() -> None:
    pictures = plots.regression_pictures([1.0, 3.0], [2.0, 2.0])  # the baseline, 2 test rows
    assert all(_png_size(p.png)[0] > 0 for p in pictures)


def test_drawing_leaves_no_pyplot_figure_open() -> None:
    import matplotlib.pyplot as plt

    truth, proba = _probabilities(60, 3)
    plots.classification_pictures([int(t) for t in truth], proba, [0, 1, 2])
    plots.confusion_matrix_picture(np.eye(3, dtype=int).tolist(), [0, 1, 2])
    assert plt.get_fignums() == []


def test_importing_the_plots_module_does_not_import_matplotlib() -> None:
    code = (
        "import sys\n"
        "import mlcontainer.training.report.plots\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
