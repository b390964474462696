"""The documentation site: it builds strictly, its spec reference is generated from the
models, and its code examples run (here, or in the README's tests where they are the
README's own)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.search.settings import SearchSettings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = (REPO / "README.md").read_text()


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", text, flags=re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_spec_reference_lists_every_key_of_every_section(site: Path) -> None:
    page = (site / "spec-reference" / "index.html").read_text()
    for model in (ExperimentSpec, SearchSettings):
        for key in model.model_fields:
            assert f"<code>{key}</code>" in page, (model.__name__, key)
    assert "At most this many trials run at once." in page  # descriptions from docstrings


def test_the_python_api_page_is_generated_from_the_docstrings(site: Path) -> None:
    page = (site / "api" / "index.html").read_text()
    assert "Runs an experiment as" in page and "Finishes an interrupted experiment" in page


@pytest.mark.usefixtures("ray_instance")
def test_every_python_example_in_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks the README shows too are the README's (its tests run the complete ones); the
    others run here, after a small real run named like the quickstart, from the folder
    that holds its results."""
    from tests.support.specs import spec_yaml
    from tunefleet.experiments.cli import main

    spec = tmp_path / "quickstart.yaml"
    spec.write_text(spec_yaml(name="quickstart", search={"num_samples": 2, "seed": 0}))
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    monkeypatch.chdir(tmp_path)
    readme = set(_python_blocks(README))
    ran = 0
    for page in sorted(DOCS.glob("*.md")):
        for block in _python_blocks(page.read_text()):
            if block in readme:
                continue
            exec(compile(block, str(page), "exec"), {})  # our own docs, not a spec
            ran += 1
    assert ran >= 1
