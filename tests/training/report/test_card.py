"""The model card: README.md in the model folder, a YAML header and a Markdown body."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
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
    if warnings:  # escaped Markdown: each reads as written once rendered
        for page in _rendered(limits).values():
            assert all(w in "".join(page.text) for w in warnings)
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


# --- data is text: names from a hostile file render as themselves -----------------------------

#: Column names, class labels and a file name that are Markdown or HTML if written raw.
HOSTILE_COLUMNS = (
    "<script>alert(1)</script>",
    "[click](javascript:alert(2))",
    "a`<img src=x onerror=alert(3)>`b",
    "# heading | cell ~~gone~~ *em* _u_ <b>bold</b>",
    "``` fenced",
)
HOSTILE_CLASSES = ("<script>alert(4)</script>", "[x](javascript:alert(5))", "&lt;ok&gt;")


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of a rendered card."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _rendered(body: str) -> dict[str, _Elements]:
    """The card's body as HTML by python-markdown and markdown-it, raw HTML allowed in both."""
    import markdown
    from markdown_it import MarkdownIt

    html = {
        "python-markdown": markdown.markdown(body, extensions=["tables"]),
        "markdown-it": MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .render(body),
    }
    out = {}
    for name, text in html.items():
        parsed = _Elements()
        parsed.feed(text)
        out[name] = parsed
    return out


@pytest.fixture(scope="module")
def hostile_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlcontainer.training.options import TrainOptions
    from mlcontainer.training.workflow import run_training

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.normal(size=240) for c in HOSTILE_COLUMNS})
    frame["ok"] = "constant"  # dropped: a limitation that names it
    frame["target <i>"] = np.resize(np.array(HOSTILE_CLASSES), 240)
    folder = tmp_path_factory.mktemp("hostile")
    source = folder / "<img src=x onerror=alert(6)>.csv"
    frame.to_csv(source, index=False)
    options = TrainOptions(
        dataset=str(source), target="target <i>", models=("logistic_regression",), cv=3,
        output=folder / "model",
    )  # fmt: skip
    return run_training(options).output


def test_names_from_the_data_render_as_text_never_as_html_or_links(
    hostile_model_dir: Path,
) -> None:
    header, body = _card(hostile_model_dir)
    assert header["model-index"][0]["results"][0]["dataset"]["name"].startswith("<img")  # type: ignore[index]
    for renderer, page in _rendered(body).items():
        tags = {tag for tag, _ in page.tags}
        assert not tags & {"script", "img", "b", "i", "s", "del"}, (renderer, tags)
        links = [a.get("href") or "" for tag, a in page.tags if tag == "a"]
        assert not any("javascript" in href.lower() for href in links), (renderer, links)
        assert all(not k.startswith("on") for _, a in page.tags for k in a), renderer
        text = "".join(page.text)
        for name in (*HOSTILE_COLUMNS[:3], *HOSTILE_CLASSES):
            assert name in text, (renderer, name)


def test_escaped_text_reads_back_as_written_in_both_renderers() -> None:
    from mlcontainer.training.report import card

    samples = [*HOSTILE_COLUMNS, *HOSTILE_CLASSES, "1. item", "- item", "+ x", "> quote",
               "back\\slash", "a_b_c", "{attr}", "![img](x)", "x\ny"]  # fmt: skip
    for sample in samples:
        expected = " ".join(sample.splitlines())
        for how in (card._text, card._code):
            for renderer, page in _rendered(f"Before {how(sample)} after.").items():
                assert "".join(page.text).strip() == f"Before {expected} after.", (
                    how.__name__,
                    renderer,
                    sample,
                )
            for renderer, page in _rendered(f"- {how(sample)}").items():
                assert [t for t, _ in page.tags] == ["ul", "li"] + (
                    ["code"] if how is card._code else []
                ), (how.__name__, renderer, sample)
