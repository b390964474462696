"""Ready scikit-learn trainables on bundled datasets, for `experiments/svc_digits.yaml` and
`experiments/forest_breast_cancer.yaml`.

Each reports `cv_score_mean` (the search's metric, mode `max`), `cv_score_std`, the per-fold
`cv_score_fold<i>` and `fit_time_s`; see `tunefleet.trainables.sklearn`.
"""

from __future__ import annotations

from tunefleet.trainables.sklearn import SklearnTrainable

__all__ = ["hgb_breast_cancer", "svc_digits"]

svc_digits = SklearnTrainable(estimator="sklearn.svm:SVC", data="digits", cv=5, scoring="accuracy")
"""An RBF SVC on raw digits pixels (0-16), 5-fold stratified accuracy. Unscaled on purpose:
the published figure, C=10 and gamma=0.001, scores about 0.988."""

hgb_breast_cancer = SklearnTrainable(
    estimator="sklearn.ensemble:HistGradientBoostingClassifier",
    data="breast_cancer",
    cv=5,
    scoring="roc_auc",
)
"""Histogram gradient boosting on breast_cancer (569 rows, 30 features), 5-fold ROC AUC;
defaults score about 0.994."""
