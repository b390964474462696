"""`SklearnTrainable`: config mapping and errors without Ray; CV scores on a real Ray, checked
against scikit-learn computed directly on the same folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tunefleet.experiments.cli import main
from tunefleet.trainables.resolve import TrainableError
from tunefleet.trainables.sklearn import SklearnTrainable

REPO = Path(__file__).resolve().parents[2]

# Named by the specs below; workers receive them through the object store.
svc_scaled = SklearnTrainable(
    estimator="sklearn.svm:SVC",
    data="digits",
    scoring="accuracy",
    preprocessing=["sklearn.preprocessing:StandardScaler"],
)
ridge_diabetes = SklearnTrainable(estimator=Ridge, data="diabetes", cv=4)

STRATIFIED = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)


def _run(write_spec, tmp_path: Path, spec: str) -> pd.DataFrame:
    path = write_spec(spec)
    assert main(["run", str(path), "--storage", str(tmp_path / "results")]) == 0
    name = spec.split("name:", 1)[1].split()[0]
    return pd.read_parquet(tmp_path / "results" / name / "trials.parquet")


# --- without Ray ---------------------------------------------------------------------------


def test_a_typo_in_the_config_names_the_closest_parameter() -> None:
    wrapper = SklearnTrainable(estimator="sklearn.svm:SVC", data="digits")
    with pytest.raises(
        TrainableError,
        match=r"config key 'gama' is not a parameter of SVC .*did you mean 'gamma'\?",
    ):
        wrapper.estimator_params({"C": 1.0, "gama": 0.001})
    # The same check on the driver, from the space's names alone (no trial needed).
    with pytest.raises(
        TrainableError,
        match=r"\(seed\); did you mean 'gamma'\? Rename or remove it in the spec's space\.$",
    ):
        wrapper.check(["C", "seed", "gama"])
    with pytest.raises(
        TrainableError,
        match=r"config key 'model' .*; its parameters are C, break_ties, cache_size, ",
    ):
        wrapper.estimator_params({"model": {"depth": 3}})
    wrapper.check(["C", "gamma", "seed"])
    with pytest.raises(
        TrainableError,
        match=r"fixed_params: 'kernal' is not a parameter of SVC; did you mean 'kernel'\?",
    ):
        SklearnTrainable(estimator=SVC, data="digits", fixed_params={"kernal": "rbf"}).check()


def test_config_maps_to_estimator_params_with_seed_and_fixed_params() -> None:
    wrapper = SklearnTrainable(
        estimator=SVC, data="digits", fixed_params={"kernel": "poly", "C": 2}
    )
    params = wrapper.estimator_params({"C": 10.0, "gamma": 0.001, "seed": 7})
    assert params == {"kernel": "poly", "C": 10.0, "gamma": 0.001, "random_state": 7}
    assert wrapper.estimator_params({})["random_state"] == 0
    forest = SklearnTrainable(estimator="sklearn.ensemble:RandomForestClassifier", data="iris")
    assert forest.estimator_params({"n_estimators": 5}, cpus=2)["n_jobs"] == 2
    with pytest.raises(TrainableError, match="config sets both 'seed' and 'random_state'"):
        wrapper.estimator_params({"seed": 1, "random_state": 2})


def test_the_repeat_index_is_a_wrapper_key_that_shifts_the_seeds() -> None:
    # `search.repeat`: Ray's Repeater adds `__trial_index__` to every copy of a config.
    wrapper = SklearnTrainable(estimator=SVC, data="digits")
    assert wrapper.estimator_params({"C": 1.0, "__trial_index__": 0})["random_state"] == 0
    assert wrapper.estimator_params({"C": 1.0, "__trial_index__": 2})["random_state"] == 2
    params = wrapper.estimator_params({"C": 1.0, "seed": 7, "__trial_index__": 2})
    assert params == {"C": 1.0, "random_state": 9}
    fixed = SklearnTrainable(estimator=SVC, data="digits", fixed_params={"random_state": 5})
    assert fixed.estimator_params({"__trial_index__": 2})["random_state"] == 5
    ridge = SklearnTrainable(estimator=Ridge, data="diabetes")
    assert "__trial_index__" not in ridge.build({"alpha": 1.0, "__trial_index__": 1}).get_params()
    assert wrapper.folds(SVC()).random_state == 0
    assert wrapper.folds(SVC(), repeat_index=3).random_state == 3
    unshuffled = SklearnTrainable(estimator=SVC, data="digits", shuffle=False)
    assert unshuffled.folds(SVC(), repeat_index=3).random_state is None


def test_population_based_training_refuses_the_wrapper_before_ray_starts(write_spec) -> None:
    from tunefleet.experiments.spec.loading import load_spec
    from tunefleet.experiments.spec.plan import make_plan

    assert SklearnTrainable.supports_checkpoints is False
    for algorithm in ("pbt", "pb2"):
        spec = write_spec(
            "name: p\ntrainable: tests.trainables.test_sklearn:ridge_diabetes\n"
            "metric: cv_score_mean\nmode: max\nspace: {alpha: {uniform: [0.1, 1.0]}}\n"
            f"search: {{algorithm: {algorithm}}}\n"
        )
        with pytest.raises(
            TrainableError,
            match=rf"^trainable: {algorithm} restores trials from each other's checkpoints, "
            r"but 'tests\.trainables\.test_sklearn:ridge_diabetes' never saves one;",
        ):
            make_plan(*load_spec(spec))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"estimator": "sklearn.svm:SVCC"},
            r"^estimator: 'sklearn.svm' has no attribute 'SVCC'; did you mean 'SVC'\?$",
        ),
        ({"estimator": "sklearn.svmm:SVC"}, r"^estimator: cannot import module 'sklearn.svmm'"),
        ({"estimator": "sklearn.svm.SVC"}, r"^estimator: 'sklearn.svm.SVC' is not an import path"),
        (
            {"estimator": "sklearn.svm:l1_min_c"},
            r"^estimator: 'sklearn.svm:l1_min_c' is a function, not a scikit-learn estimator class",
        ),
        ({"estimator": SVC(C=3)}, r"^estimator: SVC\(C=3\) is an instance; give its class \(SVC\)"),
        (
            {"scoring": "acuracy"},
            r"^scoring: 'acuracy' is not a scikit-learn scorer; did you mean 'accuracy'\?",
        ),
        (
            {"preprocessing": ["sklearn.svm:SVC"]},
            r"^preprocessing\[0\]: 'sklearn.svm:SVC' is not a scikit-learn transformer",
        ),
    ],
)
def test_bad_estimator_scoring_or_preprocessing_is_one_line(kwargs, message) -> None:
    wrapper = SklearnTrainable(**{"estimator": "sklearn.svm:SVC", "data": "digits", **kwargs})
    with pytest.raises(TrainableError, match=message) as info:
        wrapper.to_tune()  # checks before loading data or touching Ray
    assert "\n" not in str(info.value)


def test_bad_data_or_folds_fail_at_construction() -> None:
    with pytest.raises(
        TrainableError,
        match=r"^data: 'mnist' is not a bundled scikit-learn dataset; choose one of breast_cancer, diabetes, digits, iris, wine, or give a function returning \(X, y\)\.$",
    ):
        SklearnTrainable(estimator="sklearn.svm:SVC", data="mnist")
    with pytest.raises(TrainableError, match=r"^cv: must be an integer >= 2 \(folds\), got 1\.$"):
        SklearnTrainable(estimator="sklearn.svm:SVC", data="iris", cv=1)
    with pytest.raises(TrainableError, match=r"preprocessing: must be a list, got the string"):
        SklearnTrainable(
            estimator=SVC, data="iris", preprocessing="sklearn.preprocessing:StandardScaler"
        )
    with pytest.raises(
        TrainableError,
        match=r"^data: <lambda>\(\) returned a ndarray; it must return a pair \(X, y\)\.$",
    ):
        SklearnTrainable(estimator=SVC, data=lambda: np.zeros(3)).load_data()


# --- on a real Ray -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_classifier_scores_equal_stratified_cross_val_score(write_spec, tmp_path: Path) -> None:
    trials = _run(
        write_spec,
        tmp_path,
        """
name: svc
trainable: tunefleet.trainables.examples.sklearn_models:svc_digits
metric: cv_score_mean
mode: max
space: {C: {grid: [1.0, 10.0]}, gamma: 0.001}
search: {algorithm: grid}
""",
    )
    x, y = load_digits(return_X_y=True)
    assert len(trials) == 2 and (trials["status"] == "TERMINATED").all()
    for _, row in trials.iterrows():
        svc = SVC(C=row["config/C"], gamma=0.001)
        folds = cross_val_score(svc, x, y, cv=STRATIFIED, scoring="accuracy", n_jobs=1)
        assert row["cv_score_mean"] == pytest.approx(folds.mean(), abs=1e-12)
        assert row["cv_score_std"] == pytest.approx(folds.std(), abs=1e-12)
        reported = [row[f"cv_score_fold{i}"] for i in range(5)]
        assert reported == pytest.approx(list(folds), abs=1e-12)
        assert row["fit_time_s"] > 0
        plain = cross_val_score(svc, x, y, cv=KFold(5, shuffle=True, random_state=0))
        assert list(plain) != pytest.approx(reported, abs=1e-9)  # the folds are stratified
    best = trials.set_index("config/C").loc[10.0, "cv_score_mean"]
    assert best == pytest.approx(0.988, abs=0.003)  # the published figure


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_regressor_uses_plain_kfold_and_its_own_score(write_spec, tmp_path: Path) -> None:
    trials = _run(
        write_spec,
        tmp_path,
        """
name: ridge
trainable: tests.trainables.test_sklearn:ridge_diabetes
metric: cv_score_mean
mode: max
space: {alpha: 0.1}
search: {num_samples: 1}
""",
    )
    x, y = load_diabetes(return_X_y=True)
    folds = cross_val_score(Ridge(alpha=0.1), x, y, cv=KFold(4, shuffle=True, random_state=0))
    row = trials.iloc[0]
    assert row["cv_score_mean"] == pytest.approx(folds.mean(), abs=1e-12)  # R², higher is better
    assert [row[f"cv_score_fold{i}"] for i in range(4)] == pytest.approx(list(folds), abs=1e-12)
    assert "cv_score_fold4" not in trials.columns


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_repeat_cross_validates_each_copy_on_other_folds(write_spec, tmp_path: Path) -> None:
    trials = _run(
        write_spec,
        tmp_path,
        """
name: repeated
trainable: tests.trainables.test_sklearn:ridge_diabetes
metric: cv_score_mean
mode: max
space: {alpha: {uniform: [0.1, 1.0]}}
search: {num_samples: 1, repeat: 2, seed: 0}
""",
    )
    assert len(trials) == 2 and (trials["status"] == "TERMINATED").all()
    x, y = load_diabetes(return_X_y=True)
    assert trials["config/alpha"].nunique() == 1
    for _, row in trials.iterrows():
        index = int(row["config/__trial_index__"])
        folds = KFold(4, shuffle=True, random_state=index)  # copy 0: the unrepeated folds
        expected = cross_val_score(Ridge(alpha=row["config/alpha"]), x, y, cv=folds)
        assert row["cv_score_mean"] == pytest.approx(expected.mean(), abs=1e-12)
    assert sorted(trials["config/__trial_index__"]) == [0, 1]
    assert trials["cv_score_mean"].nunique() == 2


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_preprocessing_runs_inside_each_fold(write_spec, tmp_path: Path) -> None:
    trials = _run(
        write_spec,
        tmp_path,
        """
name: scaled
trainable: tests.trainables.test_sklearn:svc_scaled
metric: cv_score_mean
mode: max
space: {C: 10.0, gamma: 0.01}
search: {num_samples: 1}
""",
    )
    x, y = load_digits(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SVC(C=10.0, gamma=0.01))
    scaled = cross_val_score(pipeline, x, y, cv=STRATIFIED, scoring="accuracy").mean()
    raw = cross_val_score(SVC(C=10.0, gamma=0.01), x, y, cv=STRATIFIED).mean()
    assert trials.iloc[0]["cv_score_mean"] == pytest.approx(scaled, abs=1e-12)
    # gamma=0.01 is too wide for raw 0-16 pixels (about 0.84) but suits standardized ones.
    assert scaled > 0.97 and raw < 0.9


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_shipped_svc_digits_reaches_its_accuracy(tmp_path: Path) -> None:
    spec = REPO / "experiments" / "svc_digits.yaml"
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    trials = pd.read_parquet(tmp_path / "svc_digits" / "trials.parquet")
    assert (trials["status"] == "TERMINATED").all()
    assert trials["cv_score_mean"].max() >= 0.985
