"""The README a newcomer reads in five minutes, and the docs/ it links to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
#: One file per topic, each linked from the README.
TOPICS = (
    "data-intake.md", "training.md", "model-folder.md", "serving.md", "container.md",
    "operations.md", "batch.md", "development.md",
)  # fmt: skip
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _prose(path: Path) -> str:
    """The Markdown outside fenced code blocks (links there are not links)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def _anchors(path: Path) -> set[str]:
    """The fragment ids GitHub gives the file's headings."""
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_fits_in_two_hundred_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize(
    "command",
    [
        "uv run mlcontainer train",
        "uv run pytest",
        "docker build -t <name> .",
        "docker run -p 4000:8080 <name>",
        "examples/flask-docker-demo",
        "gcloud run deploy",
    ],
)
def test_readme_shows_the_first_commands_literally(command: str) -> None:
    assert command in README.read_text(encoding="utf-8")


def test_readme_links_every_topic_file_of_docs() -> None:
    links = set(LINK.findall(_prose(README)))
    assert {p.name for p in DOCS} >= set(TOPICS)
    for topic in TOPICS:
        assert any(link.split("#")[0] == f"docs/{topic}" for link in links), topic


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    broken = []
    for link in LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        target, _, fragment = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in _anchors(path):
            broken.append(f"{link}: no heading #{fragment} in {path.name}")
    assert broken == []


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_code_block_is_closed(page: Path) -> None:
    fences = re.findall(r"^ *```", page.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(fences) % 2 == 0


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_page_suggests_installing_from_the_package_index(page: Path) -> None:
    # mlcontainer is not published: `pip install mlcontainer` would fail or fetch a stranger's.
    text = page.read_text(encoding="utf-8")
    assert re.search(r"pip install ['\"]?mlcontainer\b", text) is None
