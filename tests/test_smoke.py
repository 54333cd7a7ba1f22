from mlcontainer.inference.predictor import Predictor


def test_penguins_predictor_accepts_raw_rows_with_missing_values(
    penguins_predictor: Predictor,
) -> None:
    row = {
        "island": "Biscoe",
        "bill_length_mm": 48.0,
        "bill_depth_mm": None,
        "flipper_length_mm": 220.0,
        "body_mass_g": 5200.0,
        "sex": None,
        "year": 2008,
    }
    result = penguins_predictor.predict_records([row])
    assert result.labels == ["Gentoo"]
    assert abs(result.probabilities.sum() - 1.0) < 1e-9
