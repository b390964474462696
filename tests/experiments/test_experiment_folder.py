"""`ExperimentFolder`: a run that fails before its first trial leaves the folder as found."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunefleet.experiments.run.experiment_folder import ExperimentFolder, RunError


class Boom(Exception):
    """Stands for whatever ends a run early (Ray unreachable, a tuner that cannot start)."""


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` (hidden ones too), with file contents."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _old_experiment(folder: Path) -> None:
    (folder / "trial_1").mkdir(parents=True)
    (folder / "trials.parquet").write_bytes(b"old results")
    (folder / "trial_1" / "result.json").write_text("{}")


def test_a_new_folder_and_its_new_parents_are_removed(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    target = tmp_path / "results" / "deeper" / "exp"
    folder = ExperimentFolder(str(target), overwrite=False)
    assert not target.exists()  # checking creates nothing
    with pytest.raises(Boom), folder.claimed():
        assert target.is_dir()
        (target / "spec.yaml").write_text("name: exp\n")
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_a_parent_another_run_wrote_to_meanwhile_stays(tmp_path: Path) -> None:
    target = tmp_path / "results" / "exp"
    folder = ExperimentFolder(str(target), overwrite=False)
    with pytest.raises(Boom), folder.claimed():
        (tmp_path / "results" / "exp-2").mkdir()
        raise Boom
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["exp-2"]


def test_an_empty_folder_stays_empty(tmp_path: Path) -> None:
    target = tmp_path / "exp"
    target.mkdir()
    with pytest.raises(Boom), ExperimentFolder(str(target), overwrite=False).claimed():
        (target / "spec.yaml").write_text("name: exp\n")
        raise Boom
    assert target.is_dir() and list(target.iterdir()) == []


def test_an_overwritten_experiment_comes_back_when_no_trial_started(tmp_path: Path) -> None:
    target = tmp_path / "exp"
    _old_experiment(target)
    before = _tree(tmp_path)
    folder = ExperimentFolder(str(target), overwrite=True)
    with pytest.raises(KeyboardInterrupt), folder.claimed():
        assert list(target.iterdir()) == []  # the old experiment is out of the way
        (target / "trials.parquet").write_bytes(b"new results")
        raise KeyboardInterrupt
    assert _tree(tmp_path) == before  # byte for byte, and nothing set aside is left


def test_an_overwritten_experiment_goes_once_a_trial_started(tmp_path: Path) -> None:
    target = tmp_path / "exp"
    _old_experiment(target)
    folder = ExperimentFolder(str(target), overwrite=True)
    with pytest.raises(Boom), folder.claimed():
        (target / "trials.parquet").write_bytes(b"new results")
        folder.trial_started()
        raise Boom  # a crash mid-run: the new results stay for `tunefleet resume`
    assert _tree(tmp_path) == {"exp": None, "exp/trials.parquet": b"new results"}


def test_a_run_that_ends_replaces_the_old_experiment(tmp_path: Path) -> None:
    target = tmp_path / "exp"
    _old_experiment(target)
    with ExperimentFolder(str(target), overwrite=True).claimed():
        (target / "trials.parquet").write_bytes(b"new results")
    assert _tree(tmp_path) == {"exp": None, "exp/trials.parquet": b"new results"}


def test_a_taken_folder_is_refused_before_and_after_the_check(tmp_path: Path) -> None:
    target = tmp_path / "exp"
    _old_experiment(target)
    with pytest.raises(RunError, match=r"exp already holds an experiment; pass --overwrite"):
        ExperimentFolder(str(target), overwrite=False)
    late = tmp_path / "late"
    folder = ExperimentFolder(str(late), overwrite=False)
    _old_experiment(late)  # another run took the name after the check
    before = _tree(tmp_path)
    with pytest.raises(RunError, match=r"late already holds an experiment"), folder.claimed():
        pass
    assert _tree(tmp_path) == before


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(RunError, match=r"^--storage: .*results is a file, not a folder"):
        ExperimentFolder(str(tmp_path / "results" / "exp"), overwrite=False)


def test_object_store_uris_are_left_alone(s3_storage: str) -> None:
    # A prefix on a real S3-compatible store (moto, tests/conftest.py): checked, never moved.
    folder = ExperimentFolder(f"{s3_storage}/exp", overwrite=False)
    with pytest.raises(Boom), folder.claimed():
        raise Boom
