"""Normal and log-normal parameters: parsed, sampled with the declared mean and spread by
random search and by Hyperopt (as Hyperopt's own distributions), refused by the searchers
that cannot take an unbounded prior."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hyperopt.pyll import stochastic
from ray.tune.search.variant_generator import generate_variants

from tunefleet.search import FifoSettings, Normal, SearchSettings, SpaceError, parse_space
from tunefleet.search.algorithms import ClipToSpace, build_search
from tunefleet.search.combinations import SearchConfigError, check_search
from tunefleet.search.hyperopt_search import convert_search_space
from tunefleet.search.tune_space import to_tune_param_space

SPACE = {
    "a": {"normal": [0.5, 0.1]},
    "b": {"lognormal": [-4.6, 0.5]},  # median 0.01
    "c": {"qnormal": [10.0, 2.0, 1.0]},
    "d": {"qlognormal": {"mu": 2.0, "sigma": 0.3, "q": 0.5}},
    "model": {"e": {"normal": {"mu": -3.0, "sigma": 2.0}}},
    "epochs": 3,
}
N = 4000


def _check_moments(values: np.ndarray, mu: float, sigma: float, *, log: bool = False) -> None:
    """The sample's mean and standard deviation (of its logarithm for a log-normal) match
    the parameters: the mean within 5 standard errors, the spread within 10%."""
    x = np.log(values) if log else values
    assert abs(x.mean() - mu) < 5 * sigma / np.sqrt(len(x)), (x.mean(), mu)
    assert abs(x.std() / sigma - 1) < 0.1, (x.std(), sigma)


def _check_all(samples: list[dict[str, Any]]) -> None:
    a = np.array([s["a"] for s in samples])
    b = np.array([s["b"] for s in samples])
    c = np.array([s["c"] for s in samples])
    d = np.array([s["d"] for s in samples])
    e = np.array([s["model"]["e"] for s in samples])
    _check_moments(a, 0.5, 0.1)
    _check_moments(b, -4.6, 0.5, log=True)
    assert b.min() > 0
    assert np.allclose(c, np.round(c)), "qnormal: multiples of q=1"
    _check_moments(c, 10.0, np.sqrt(2.0**2 + 1 / 12))  # rounding adds q²/12 to the variance
    assert np.allclose(d / 0.5, np.round(d / 0.5)), "qlognormal: multiples of q=0.5"
    assert abs(np.median(d) - np.exp(2.0)) < 0.5  # median exp(mu), up to the rounding
    _check_moments(e, -3.0, 2.0)
    assert all(s["epochs"] == 3 for s in samples)


def test_each_normal_keyword_parses_with_mu_sigma_and_q() -> None:
    params = parse_space(SPACE).params
    assert params["a"] == Normal(0.5, 0.1)
    assert params["b"] == Normal(-4.6, 0.5, log=True)
    assert params["c"] == Normal(10.0, 2.0, q=1.0)
    assert params["d"] == Normal(2.0, 0.3, log=True, q=0.5)
    assert params["model/e"] == Normal(-3.0, 2.0)
    assert [params[k].keyword for k in "abcd"] == ["normal", "lognormal", "qnormal", "qlognormal"]


def test_validate_describes_the_centre_and_the_95_percent_range() -> None:
    lines = parse_space({k: SPACE[k] for k in "abd"}).describe()
    assert lines == [
        "a  normal[mu 0.5, sigma 0.1] (95% in [0.304, 0.696], unbounded)",
        "b  lognormal[mu -4.6, sigma 0.5] (median 0.01005, 95% in [0.003773, 0.02678], positive)",
        "d  qlognormal[mu 2, sigma 0.3, step 0.5] (median 7.389, 95% in [4.104, 13.3], positive)",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"x": {"normal": [0.5]}}, r"^space\.x\.normal: takes \[mu, sigma\], got \[0\.5\]\.$"),
        (
            {"x": {"qnormal": [0.5, 0.1]}},
            r"^space\.x\.qnormal: takes \[mu, sigma, q\], got \[0\.5, 0\.1\]\.$",
        ),
        (
            {"x": {"normal": [0.5, 0.0]}},
            r"^space\.x\.normal: the spread `sigma` must be > 0, got 0\.$",
        ),
        ({"x": {"lognormal": [0.0, -1.0]}}, r"`sigma` must be > 0, got -1\.$"),
        ({"x": {"normal": ["a", 1.0]}}, r"^space\.x\.normal: `mu` must be a number, got 'a'\.$"),
        ({"x": {"normal": [0.0, float("inf")]}}, r"`sigma` must be finite"),
        ({"x": {"qlognormal": [0.0, 1.0, 0]}}, r"^space\.x\.qlognormal: the step `q` must be > 0"),
        (
            {"x": {"normal": {"mean": 0, "sigma": 1}}},
            r"^space\.x\.normal: unknown key 'mean'; normal takes \[mu, sigma\]\.$",
        ),
        (
            {"x": {"lognormal": [1000.0, 1.0]}},
            r"^space\.x\.lognormal: mu and sigma are those of the value's logarithm, .* "
            r"\(e\.g\. mu=-6\.9 for a median of 0\.001\)\.$",
        ),
        (
            {"x": {"normale": [0.5, 0.1]}},
            r"^space\.x: 'normale' is not a distribution; did you mean 'normal'\?",
        ),
    ],
)
def test_malformed_normals_are_refused_naming_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_space(raw)


def test_random_search_samples_the_declared_mean_and_spread() -> None:
    param_space = to_tune_param_space(parse_space(SPACE))
    rng = np.random.RandomState(0)
    samples = [next(iter(generate_variants(param_space, random_state=rng)))[1] for _ in range(N)]
    _check_all(samples)


def test_random_search_with_a_seed_repeats_its_normal_draws() -> None:
    def draws(seed: int) -> list[float]:
        search = build_search(
            SearchSettings(seed=seed), FifoSettings(), space=parse_space(SPACE), stop={}
        )
        # Ray's saved experiment state pickles the param_space and its domains.
        param_space = pickle.loads(pickle.dumps(search.param_space))
        rng = np.random.RandomState(seed)
        return [next(iter(generate_variants(param_space, random_state=rng)))[1]["b"] for _ in "ab"]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_hyperopt_gets_its_own_normal_distributions() -> None:
    converted = convert_search_space(to_tune_param_space(parse_space(SPACE)))
    # hp.normal, hp.lognormal, hp.qnormal, hp.qlognormal, named as Ray names parameters.
    kinds = {k: converted[k].pos_args[0].pos_args[1].name for k in "abcd"}
    assert kinds == {"a": "normal", "b": "lognormal", "c": "qnormal", "d": "qlognormal"}
    assert converted["model"]["e"].pos_args[0].pos_args[0].obj == "model/e"
    assert converted["epochs"] == 3
    rng = np.random.default_rng(0)
    _check_all([stochastic.sample(converted, rng=rng) for _ in range(N)])


def test_hyperopt_search_suggests_from_the_normal_priors() -> None:
    """Before TPE starts modelling, Hyperopt draws from the priors as declared."""
    search = build_search(
        SearchSettings(algorithm="hyperopt", seed=0, n_initial_points=N),
        FifoSettings(),
        space=parse_space(SPACE),
        stop={},
    )
    searcher = search.search_alg
    searcher.set_search_properties("value", "min", search.param_space)
    samples = []
    for i in range(1000):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"value": 0.0, **config})
        samples.append({**config, "epochs": 3})
    a = np.array([s["a"] for s in samples])
    b = np.array([s["b"] for s in samples])
    _check_moments(a, 0.5, 0.1)
    _check_moments(b, -4.6, 0.5, log=True)


def test_hyperopt_samples_a_lognormal_under_a_conditional_choice() -> None:
    space = parse_space(
        {
            "opt": {
                "choice": {
                    "sgd": {"lr": {"lognormal": [-5.0, 1.0]}},
                    "adam": {"lr": {"qnormal": [3.0, 1.0, 0.5]}},
                }
            }
        }
    )
    search = build_search(
        SearchSettings(algorithm="hyperopt", seed=0, n_initial_points=N),  # the prior only
        FifoSettings(),
        space=space,
        stop={},
        metric="s",
        mode="max",
    )
    configs = [search.search_alg.suggest(f"t{i}") for i in range(400)]
    sgd = np.array([c["lr"] for c in configs if c["opt"] == "sgd"])
    adam = np.array([c["lr"] for c in configs if c["opt"] == "adam"])
    assert len(sgd) > 100 and len(adam) > 100
    _check_moments(sgd, -5.0, 1.0, log=True)
    assert np.allclose(adam / 0.5, np.round(adam / 0.5))


@pytest.mark.parametrize(
    ("search", "space", "message"),
    [
        (
            {"algorithm": "optuna"},
            {"x": {"normal": [0.5, 0.1]}},
            r"^space\.x: a normal distribution has no bounds, but Optuna's samplers draw only "
            r"from bounded ranges; use algorithm random, hyperopt or pbt, which sample it, or "
            r"give bounds, e\.g\. `uniform: \[0\.304, 0\.696\]` \(its 95% range\)\.$",
        ),
        (
            {"algorithm": "optuna", "sampler": "random"},
            {"m": {"lr": {"lognormal": [-4.6, 0.5]}}},
            r"^space\.m\.lr: a lognormal distribution .* Optuna's samplers .* "
            r"`loguniform: \[0\.003773, 0\.02678\]`",
        ),
        (
            {"algorithm": "grid"},
            {"g": {"grid": [1, 2]}, "x": {"qnormal": [0, 1, 0.5]}},
            r"^space\.x: a qnormal distribution has no bounds, but grid tries fixed values; "
            r"use algorithm random, hyperopt or pbt",
        ),
        (
            {"algorithm": "pb2"},
            {"x": {"normal": [0.5, 0.1]}},
            r"^space\.x: .* but pb2 models parameters between bounds; use algorithm random, "
            r"hyperopt or pbt",
        ),
        (
            {"algorithm": "random", "repeat": 2},
            {"x": {"normal": [0.5, 0.1]}},
            r"^space\.x: .* but random search with search\.repeat runs on Optuna's random "
            r"sampler, which draws only from bounded ranges; use algorithm hyperopt \(which "
            r"samples it\), or remove repeat",
        ),
        (
            {"algorithm": "random"},
            {"opt": {"choice": {"a": {"lr": {"lognormal": [-5, 1]}}, "b": {}}}},
            r"^space\.opt\.choice\.a\.lr: .* but random search over a conditional space runs "
            r"on Optuna's random sampler, .*; use algorithm hyperopt, which samples it, or give "
            r"bounds",
        ),
    ],
)
def test_searchers_without_unbounded_priors_refuse_them(
    search: dict[str, Any], space: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        check_search(SearchSettings(**search), FifoSettings(), parse_space(space), {})


@pytest.mark.parametrize(
    "search",
    [
        {"algorithm": "random"},
        {"algorithm": "random", "points_to_evaluate": [{"x": 0.4}]},
        {"algorithm": "hyperopt", "repeat": 2},
        {"algorithm": "pbt"},
    ],
)
def test_searchers_that_sample_priors_take_them(search: dict[str, Any]) -> None:
    space = parse_space({"x": {"normal": [0.5, 0.1]}, "y": {"qlognormal": [0, 1, 0.1]}})
    settings = SearchSettings(**search, seed=0)
    check_search(settings, FifoSettings(), space, {})
    built = build_search(settings, FifoSettings(), space=space, stop={})
    assert built.search_alg is not None


def test_pbt_mutations_resample_from_the_prior_and_keep_the_step() -> None:
    space = parse_space({"x": {"normal": [0.5, 0.1]}, "y": {"qlognormal": [0.0, 1.0, 0.1]}})
    pbt = build_search(SearchSettings(algorithm="pbt"), FifoSettings(), space=space, stop={})
    mutations = pbt.scheduler._hyperparam_mutations  # Ray keeps them as given
    np.random.seed(0)
    xs = np.array([mutations["x"].sample(None) for _ in range(N)])
    _check_moments(xs, 0.5, 0.1)
    ys = np.array([mutations["y"].sample(None) for _ in range(N)])
    assert abs(np.median(ys) - 1.0) < 0.1 and ys.min() >= 0
    # A perturbed value (x 1.2) is put back on the grid of q, with no bounds to clip to.
    clip = ClipToSpace({"x": Normal(0.5, 0.1), "y": Normal(0.0, 1.0, log=True, q=0.1)})
    assert clip({"x": 0.5 * 1.2, "y": 0.7 * 1.2}) == {"x": pytest.approx(0.6), "y": 0.8}
