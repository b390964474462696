"""A scikit-learn trainable: the user names an estimator and data; tunefleet cross-validates.

    from tunefleet.trainables.sklearn import SklearnTrainable

    svc_digits = SklearnTrainable(estimator="sklearn.svm:SVC", data="digits", scoring="accuracy")

The spec then names `mymodule:svc_digits` and its space sets the estimator's parameters
(`C: {loguniform: [0.1, 100.0]}`). The data is loaded once, on the driver, and travels once
through Ray's object store. Every trial cross-validates its estimator on the same folds as
every other trial and reports one result:

- `cv_score_mean`, `cv_score_std`: mean and standard deviation (ddof=0, as in
  `GridSearchCV`'s `std_test_score`) of the fold scores;
- `cv_score_fold0` ... `cv_score_fold{cv-1}`: each fold's score;
- `fit_time_s`, `score_time_s`: seconds spent fitting and scoring, summed over the folds.

Scores follow scikit-learn's convention that higher is better: the `neg_*` scorers
(`neg_mean_squared_error`, `neg_log_loss`, ...) are already negated, so the spec's mode is
`max` for every scorer.

Every config key must be a parameter of the estimator (`get_params(deep=True)`: nested
`step__param` names count); any other key is an error naming the closest parameter, never
silently dropped. The wrapper itself reads `WRAPPER_KEYS`: `seed` [0] sets the estimator's
`random_state` when it has one and neither the config nor `fixed_params` sets it. The folds
never depend on `seed`. An unset `n_jobs` becomes the trial's CPUs, and BLAS/OpenMP threads
are limited to them while fitting.

With `search.repeat`, Ray numbers the copies of a config with `__trial_index__` (0, 1, ...),
also a wrapper key: copy i adds i to the `random_state` the wrapper sets from `seed` and to
the folds' shuffling seed, so the repeats are a repeated k-fold CV of the config (copy 0 is
exactly the unrepeated trial, and copy i uses the same folds for every config). A
`random_state` set by the config or `fixed_params`, or `shuffle=False`, stays as given.

The wrapper saves no checkpoints (a trial is one fit per fold), so population-based
training, which restores trials from each other's checkpoints, refuses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray import tune

from tunefleet.common.suggest import did_you_mean
from tunefleet.trainables.api import report, trial_cpus
from tunefleet.trainables.contract import Wrapper
from tunefleet.trainables.resolve import TrainableError, import_object

__all__ = ["DATASETS", "REPEAT_INDEX", "WRAPPER_KEYS", "SklearnTrainable"]

DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")
"""scikit-learn's bundled datasets (`sklearn.datasets.load_<name>`): offline, no download."""

REPEAT_INDEX = "__trial_index__"
"""The key Ray's `Repeater` (`search.repeat`) adds to number the copies of a config."""

WRAPPER_KEYS = ("seed", REPEAT_INDEX)
"""Config keys the wrapper reads itself instead of passing them to the estimator."""

_SPACE_KEYS = tuple(k for k in WRAPPER_KEYS if k != REPEAT_INDEX)  # those a spec sets


@dataclass(frozen=True, kw_only=True)
class SklearnTrainable(Wrapper):
    """Tunes a scikit-learn estimator by k-fold cross-validation, one result per trial.

    Args:
        estimator: An estimator class, or its import path such as `"sklearn.svm:SVC"`
            (imported when the run starts).
        data: `() -> (X, y)`, called once on the driver, or the name of a bundled dataset in
            `DATASETS`. Hold out any test set yourself: every row given here is used in CV.
        cv: Number of folds (at least 2).
        scoring: A scikit-learn scorer name (`"accuracy"`, `"roc_auc"`,
            `"neg_mean_squared_error"`, ...) or None for the estimator's own `score`
            (accuracy for classifiers, R² for regressors). Higher is always better.
        preprocessing: Transformers put in front of the estimator in a `Pipeline`, fitted
            within each fold: import paths, classes (built with default arguments) or
            instances (cloned for every fold).
        fixed_params: Estimator parameters the search does not set; a config key of the same
            name overrides them.
        shuffle: Shuffle the rows before splitting them into folds.
        random_state: Seeds the fold shuffling (the same folds for every trial).
        test_size: Hold out this fraction of the rows (stratified for classifiers, split
            with seed 0) as the test split of the final evaluation: the search
            cross-validates on the rest only. None: no test split.
    """

    estimator: str | type[Any]
    data: str | Callable[[], tuple[Any, Any]]
    cv: int = 5
    scoring: str | None = None
    preprocessing: Sequence[str | type[Any] | Any] = ()
    fixed_params: Mapping[str, Any] = field(default_factory=dict)
    shuffle: bool = True
    random_state: int | None = 0
    test_size: float | None = None

    supports_checkpoints = False  # one result per trial, nothing to resume from
    reads_seed = True  # `seed` sets the estimator's `random_state`

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            if self.data not in DATASETS:
                raise TrainableError(
                    f"data: {self.data!r} is not a bundled scikit-learn dataset; choose one of "
                    f"{', '.join(DATASETS)}, or give a function returning (X, y)."
                )
        elif not callable(self.data):
            raise TrainableError(
                f"data: got a {type(self.data).__name__}; give a function returning (X, y) or "
                f"one of {', '.join(DATASETS)}."
            )
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or self.cv < 2:
            raise TrainableError(f"cv: must be an integer >= 2 (folds), got {self.cv!r}.")
        if self.test_size is not None and not 0 < self.test_size < 1:
            raise TrainableError(
                f"test_size: a fraction of the rows in (0, 1), got {self.test_size!r}."
            )
        if isinstance(self.preprocessing, str):
            raise TrainableError(
                f"preprocessing: must be a list, got the string {self.preprocessing!r}; write "
                f"[{self.preprocessing!r}]."
            )

    def to_tune(self) -> Any:
        """Checks the wrapper, loads the data once and returns the Ray Tune trainable."""
        self.check()
        x, y, _, _ = self.split()
        return tune.with_parameters(_cross_validate, wrapper=self, x=x, y=y)

    @property
    def has_test(self) -> bool:
        """Whether a held-out test split is configured (`test_size`)."""
        return self.test_size is not None

    def split(self) -> tuple[Any, Any, Any, Any]:
        """`(X_search, y_search, X_test, y_test)`; the test part is None without `test_size`."""
        x, y = self.load_data()
        if self.test_size is None:
            return x, y, None, None
        from sklearn.base import is_classifier  # scikit-learn: loaded on use
        from sklearn.model_selection import train_test_split  # scikit-learn: loaded on use

        final = self.build({})
        final = final.steps[-1][1] if hasattr(final, "steps") else final
        stratify = y if is_classifier(final) else None
        x_search, x_test, y_search, y_test = train_test_split(
            x, y, test_size=self.test_size, random_state=0, stratify=stratify
        )
        return x_search, y_search, x_test, y_test

    @property
    def preset_keys(self) -> frozenset[str]:
        """The keys of `fixed_params`."""
        return frozenset(self.fixed_params)

    def held_out_metric(self, metric: str) -> str:
        """The score name in `evaluate`'s result: `score` (for `cv_score_mean`)."""
        return "score"

    def evaluate(
        self,
        config: dict[str, Any],
        *,
        seed: int,
        cpus: float = 1,
        gpus: float = 0,
        workers: int = 1,
    ) -> dict[str, float]:
        """Cross-validates `config` with `seed` on the search rows (`val_score`: the mean over
        the search's folds), refits it on all of them and scores the held-out rows
        (`test_score`).

        Raises:
            TrainableError: If the wrapper has no `test_size`.
        """
        from sklearn.metrics import check_scoring  # scikit-learn: loaded on use
        from sklearn.model_selection import cross_val_score  # scikit-learn: loaded on use
        from threadpoolctl import threadpool_limits  # scikit-learn: loaded on use

        if self.test_size is None:
            raise TrainableError("test_size: not set, so there is no test split to evaluate on.")
        config = {k: v for k, v in config.items() if k != REPEAT_INDEX}
        config["random_state" if "random_state" in config else "seed"] = seed
        x, y, x_test, y_test = self.split()
        threads = max(1, int(cpus))  # one process: `workers` is always 1 (plan refuses more)
        model = self.build(config, cpus=threads)
        with threadpool_limits(limits=threads):
            folds = self.folds(model)
            val = cross_val_score(model, x, y, cv=folds, scoring=self.scoring, n_jobs=1)
            model.fit(x, y)
            test = check_scoring(model, scoring=self.scoring)(model, x_test, y_test)
        return {"val_score": float(np.mean(val)), "test_score": float(test)}

    def check(self, config_keys: Iterable[str] = ()) -> None:
        """Imports the estimator and transformers and checks `scoring`, `fixed_params` and
        the names of the config keys the space will set, without loading data.

        Args:
            config_keys: Top-level config keys (the spec's space names), checked as in
                `estimator_params`; lets a typo fail before any trial starts.

        Raises:
            TrainableError: With one line naming the field, the value and the fix.
        """
        known = self.param_names()
        self.transformers()
        if self.scoring is not None:
            from sklearn.metrics import get_scorer_names  # scikit-learn: loaded on use

            names = sorted(get_scorer_names())
            if self.scoring not in names:
                raise TrainableError(
                    f"scoring: {self.scoring!r} is not a scikit-learn scorer"
                    f"{_hint(self.scoring, names)}; None uses the estimator's own score."
                )
        keys = [k for k in config_keys if k not in WRAPPER_KEYS]
        _check_keys(keys, known, "config", self.estimator_class().__name__)

    def param_names(self) -> set[str]:
        """The estimator's parameter names, nested `step__param` ones included.

        Raises:
            TrainableError: If the estimator is not usable or `fixed_params` names a parameter
                it does not have.
        """
        cls = self.estimator_class()
        top = [p for p in inspect.signature(cls).parameters if p != "self"]
        _check_keys(self.fixed_params, top, "fixed_params", cls.__name__, deep_ok=True)
        known = set(_instantiate(cls, self.fixed_params).get_params(deep=True))
        _check_keys(self.fixed_params, known, "fixed_params", cls.__name__)
        return known

    def estimator_class(self) -> type[Any]:
        """The estimator class, imported if given as a path.

        Raises:
            TrainableError: If it does not import or is not an estimator class.
        """
        obj = self.estimator
        path = obj if isinstance(obj, str) else getattr(obj, "__name__", repr(obj))
        if isinstance(obj, str):
            obj = import_object(obj, key="estimator")
        if inspect.isclass(obj) and hasattr(obj, "fit") and hasattr(obj, "get_params"):
            return obj
        if hasattr(obj, "get_params") and hasattr(obj, "fit"):
            raise TrainableError(
                f"estimator: {obj!r} is an instance; give its class ({type(obj).__name__}) and "
                "put its parameters in fixed_params."
            )
        raise TrainableError(
            f"estimator: {path!r} is a {type(obj).__name__}, not a scikit-learn estimator "
            "class (one with fit and get_params); give e.g. 'sklearn.svm:SVC'."
        )

    def transformers(self) -> list[Any]:
        """New, unfitted instances of the `preprocessing` transformers.

        Raises:
            TrainableError: If one does not import or is not a transformer.
        """
        from sklearn.base import clone  # scikit-learn: loaded on use

        steps = []
        for i, item in enumerate(self.preprocessing):
            key = f"preprocessing[{i}]"
            obj = import_object(item, key=key) if isinstance(item, str) else item
            if not (hasattr(obj, "fit") and hasattr(obj, "transform")):
                raise TrainableError(
                    f"{key}: {item!r} is not a scikit-learn transformer (with fit and "
                    "transform); give e.g. 'sklearn.preprocessing:StandardScaler'."
                )
            steps.append(obj() if inspect.isclass(obj) else clone(obj))
        return steps

    def estimator_params(self, config: Mapping[str, Any], *, cpus: int = 1) -> dict[str, Any]:
        """Maps a trial config to the estimator's parameters (`fixed_params` included).

        Args:
            config: The trial's config.
            cpus: The trial's CPUs, given to `n_jobs` when the estimator has it and nothing
                sets it.

        Raises:
            TrainableError: If a key is neither an estimator parameter nor in `WRAPPER_KEYS`.
        """
        known = self.param_names()
        searched = {k: v for k, v in config.items() if k not in WRAPPER_KEYS}
        _check_keys(searched, known, "config", self.estimator_class().__name__)
        params = {**self.fixed_params, **searched}
        if "random_state" in known:
            index = int(config.get(REPEAT_INDEX, 0))
            if "seed" in config:
                if "random_state" in config:
                    raise TrainableError(
                        "config sets both 'seed' and 'random_state'; keep one of them in the "
                        "spec's space."
                    )
                params["random_state"] = int(config["seed"]) + index
            params.setdefault("random_state", index)
        if "n_jobs" in known and params.get("n_jobs") is None:
            params["n_jobs"] = cpus
        return params

    def build(self, config: Mapping[str, Any], *, cpus: int = 1) -> Any:
        """The unfitted estimator for a config, behind `preprocessing` in a `Pipeline`."""
        from sklearn.pipeline import make_pipeline  # scikit-learn: loaded on use

        estimator = _instantiate(self.estimator_class(), self.estimator_params(config, cpus=cpus))
        steps = self.transformers()
        return make_pipeline(*steps, estimator) if steps else estimator

    def folds(self, estimator: Any, *, repeat_index: int = 0) -> Any:
        """The CV splitter: stratified for classifiers, plain k-fold otherwise.

        Args:
            estimator: The estimator (or pipeline) to be cross-validated.
            repeat_index: The config's `__trial_index__` under `search.repeat`: added to
                `random_state`, so each repeat shuffles the rows differently.
        """
        from sklearn.base import is_classifier  # scikit-learn: loaded on use
        from sklearn.model_selection import KFold, StratifiedKFold  # scikit-learn: loaded on use

        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        splitter = StratifiedKFold if is_classifier(final) else KFold
        seed = self.random_state if self.shuffle else None
        if seed is not None:
            seed += repeat_index
        return splitter(n_splits=self.cv, shuffle=self.shuffle, random_state=seed)

    def load_data(self) -> tuple[Any, Any]:
        """`(X, y)`: the bundled dataset, or what `data()` returns.

        Raises:
            TrainableError: If `data()` does not return a pair.
        """
        if isinstance(self.data, str):
            import sklearn.datasets  # scikit-learn: loaded on use

            loader = getattr(sklearn.datasets, f"load_{self.data}")
            x, y = loader(return_X_y=True)
            return x, y
        result = self.data()
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TrainableError(
                f"data: {getattr(self.data, '__name__', 'data')}() returned a "
                f"{type(result).__name__}; it must return a pair (X, y)."
            )
        return result[0], result[1]


def _instantiate(cls: type[Any], params: Mapping[str, Any]) -> Any:
    """`cls(**top_level_params)`, then `set_params` for nested `step__param` names."""
    top = {k: v for k, v in params.items() if "__" not in k}
    nested = {k: v for k, v in params.items() if "__" in k}
    try:
        estimator = cls(**top)
    except TypeError as exc:
        raise TrainableError(
            f"estimator: {cls.__name__}(...) raised TypeError: {exc}; give its required "
            "arguments in fixed_params."
        ) from None
    return estimator.set_params(**nested) if nested else estimator


def _hint(key: str, names: Iterable[str]) -> str:
    return did_you_mean(key, names, otherwise="")


def _check_keys(
    given: Iterable[str], names: Iterable[str], where: str, estimator: str, *, deep_ok: bool = False
) -> None:
    allowed = set(names)
    for key in given:
        if (deep_ok and "__" in key) or key in allowed:
            continue
        hint = _hint(key, allowed) or f"; its parameters are {', '.join(sorted(allowed))}."
        if where == "config":
            raise TrainableError(
                f"config key {key!r} is not a parameter of {estimator} nor a key the wrapper "
                f"reads ({', '.join(_SPACE_KEYS)}){hint} Rename or remove it in the spec's "
                "space."
            )
        raise TrainableError(f"{where}: {key!r} is not a parameter of {estimator}{hint}")


def _cross_validate(config: dict[str, Any], *, wrapper: SklearnTrainable, x: Any, y: Any) -> None:
    """The function trainable Ray Tune runs for each trial."""
    from sklearn.model_selection import cross_validate  # scikit-learn: loaded on use
    from threadpoolctl import threadpool_limits  # scikit-learn: loaded on use

    cpus = trial_cpus()
    model = wrapper.build(config, cpus=cpus)
    with threadpool_limits(limits=cpus):
        result = cross_validate(
            model,
            x,
            y,
            cv=wrapper.folds(model, repeat_index=int(config.get(REPEAT_INDEX, 0))),
            scoring=wrapper.scoring,
            n_jobs=1,
            error_score="raise",
        )
    scores = np.asarray(result["test_score"], dtype=float)
    metrics: dict[str, float] = {
        "cv_score_mean": float(scores.mean()),
        "cv_score_std": float(scores.std()),
    }
    metrics.update({f"cv_score_fold{i}": float(s) for i, s in enumerate(scores)})
    metrics["fit_time_s"] = float(np.sum(result["fit_time"]))
    metrics["score_time_s"] = float(np.sum(result["score_time"]))
    report(metrics)
