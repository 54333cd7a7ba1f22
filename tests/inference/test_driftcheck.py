"""A batch file against the model's drift reference: ranked PSI, tests, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlcontainer.core.drift import PREDICTION
from mlcontainer.core.errors import ArtifactError, InputValidationError
from mlcontainer.inference.driftcheck import batch_drift
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.workflow import TrainOutcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def predictor(penguins_model_dir: Path) -> Predictor:
    return load_predictor(penguins_model_dir, threads=1)


def _sample(outcome: TrainOutcome, rows: int = 3_000) -> pd.DataFrame:
    return outcome.dataset.X.sample(rows, replace=True, random_state=0).reset_index(drop=True)


def test_rows_drawn_from_the_training_data_show_no_drift(
    predictor: Predictor, penguins_outcome: TrainOutcome, tmp_path: Path
) -> None:
    path = tmp_path / "same.csv"
    _sample(penguins_outcome).to_csv(path, index=False)
    result = batch_drift(predictor, path, chunk_rows=700)  # several chunks
    assert result.rows == 3_000
    assert result.largest < 0.05
    assert [d.name for d in result.drifts][-1] == PREDICTION


def test_a_shifted_number_ranks_first_with_a_small_ks_p_value(
    predictor: Predictor, penguins_outcome: TrainOutcome, tmp_path: Path
) -> None:
    frame = _sample(penguins_outcome)
    frame["body_mass_g"] += 1_500
    path = tmp_path / "shifted.parquet"
    frame.to_parquet(path)
    result = batch_drift(predictor, path)
    top = result.drifts[0]
    assert top.name == "body_mass_g"
    assert top.psi > 1.0
    assert top.test == "KS"
    assert top.p_value < 1e-6
    assert all(d.psi < 0.05 for d in result.features[1:])


def test_floods_of_unseen_categories_and_missing_values_show_in_their_shares(
    predictor: Predictor, penguins_outcome: TrainOutcome, tmp_path: Path
) -> None:
    frame = _sample(penguins_outcome)
    frame["island"] = "Atlantis"
    frame["sex"] = None
    path = tmp_path / "floods.csv"
    frame.to_csv(path, index=False)
    drifts = {d.name: d for d in batch_drift(predictor, path).drifts}
    assert drifts["island"].unseen == 1.0
    assert drifts["island"].test == "chi-square"
    assert drifts["sex"].missing == 1.0
    assert {d.name for d in batch_drift(predictor, path).drifts[:2]} == {"island", "sex"}
    assert drifts["bill_length_mm"].psi < 0.05


def test_a_bad_value_is_named_by_its_line_as_predict_names_it(
    predictor: Predictor, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
        "Biscoe,40,18,190,3800,male,2008\n"
        "Biscoe,forty,18,190,3800,male,2008\n"
    )
    with pytest.raises(InputValidationError, match="line 3"):
        batch_drift(predictor, path)


def test_a_model_without_a_reference_is_refused_naming_the_fix(tmp_path: Path) -> None:
    old = load_predictor(FIXTURES / "model-0.1.0-penguins", runtime="sklearn", threads=1)
    path = tmp_path / "rows.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ArtifactError, match=r"no drift reference.*train it again"):
        batch_drift(old, path)
