"""What tunefleet may ask of a trainable, written once.

A spec's `trainable:` names a function `train(config)`, a class with `setup(config)` and
`step()`, a `ray.tune.Trainable` subclass, or a wrapper such as `TorchTrainable`.
`tunefleet.trainables.resolve.check_trainable` turns each into a `Wrapper`, and the rest of
tunefleet asks only what `Wrapper` declares: it never probes a trainable for attributes.

A wrapper of your own subclasses `Wrapper`, implements `to_tune()` and overrides the parts
it supports; an object with only a `to_tune()` method (`TuneAdaptable`) still runs, with
the defaults below except that it may save checkpoints (Ray decides at run time).

The held-out protocol (`tunefleet evaluate`, `final:` in a spec) of the wrappers:

- the search sees only the training and validation data, never the test split;
- `has_test` says whether a test split is configured;
- `evaluate(config, seed=s, cpus=c)` trains the config once with seed `s` and returns
  `val_<name>` and `test_<name>` for every score it computes;
- `held_out_metric(metric)` names the `<name>` that matches the search's metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = ["TuneAdaptable", "Wrapper"]


@runtime_checkable
class TuneAdaptable(Protocol):
    """The least a wrapper has: a method that builds its Ray Tune trainable."""

    def to_tune(self) -> Any:
        """Returns a Ray Tune trainable; called once, on the driver."""
        ...


class Wrapper:
    """A trainable as tunefleet sees it: each part of the contract with its default.

    Attributes:
        supports_checkpoints: Trials save checkpoints, so population-based training (which
            restores trials from each other's checkpoints) and failure recovery work.
        checkpoint_key: A config key that sets how often a trial saves a checkpoint; set to
            1 when the scheduler continues trials from checkpoints (PBT, HyperBand), unless
            the space or `preset_keys` set it. None: no such key.
        structural_keys: Config keys that decide the kind of state a checkpoint holds:
            population-based training must not change them in a running trial.
        iterative: A trial reports more than once, so early-stopping schedulers apply.
        reads_seed: The trainable reads a `seed` config key; every trial then gets one in
            its config (`search.seed`) unless the space or `preset_keys` set it.
        data_parallel: `to_tune()` gives a function that can run on every worker of a
            data-parallel trial (`resources.workers`; `tunefleet.trainables.data_parallel`).
    """

    supports_checkpoints: bool = False
    checkpoint_key: str | None = None
    structural_keys: tuple[str, ...] = ()
    iterative: bool = False
    reads_seed: bool = False
    data_parallel: bool = False

    def to_tune(self) -> Any:
        """Returns the Ray Tune trainable (a function or a `Trainable` class); called once,
        on the driver, when the run starts."""
        raise NotImplementedError(f"{type(self).__name__} must implement to_tune().")

    def check(self, config_keys: Iterable[str] = ()) -> None:
        """Checks the wrapper and the names of the config keys the space will set, before
        Ray starts (a typo fails here, not in every trial). Raises an error with one line
        naming the key and the fix; accepts everything by default.

        Args:
            config_keys: The top-level config keys the spec's space sets.
        """

    @property
    def kind(self) -> str:
        """What `tunefleet validate` calls this trainable (`function`, `class`, or the
        wrapper's class name)."""
        return type(self).__name__

    @property
    def preset_keys(self) -> frozenset[str]:
        """Config keys the wrapper gives a value when the space does not."""
        return frozenset()

    @property
    def has_test(self) -> bool:
        """Whether a held-out test split is configured (needed by `evaluate`)."""
        return False

    def held_out_metric(self, metric: str) -> str:
        """The score name in `evaluate`'s result that matches the search's `metric`."""
        return metric

    def evaluate(
        self,
        config: dict[str, Any],
        *,
        seed: int,
        cpus: float = 1,
        gpus: float = 0,
        workers: int = 1,
    ) -> dict[str, float]:
        """Retrains `config` with `seed` and scores it on the validation and test splits.

        Args:
            config: A trial config from the search.
            seed: Replaces the config's seed.
            cpus: The CPUs the retraining may use (per worker).
            gpus: The GPUs reserved for it (the trials' `resources.gpu`, per worker).
            workers: Workers it trains on, as the trials did (`resources.workers`).

        Returns:
            `val_<name>` and `test_<name>` for every score (see `held_out_metric`).
        """
        raise NotImplementedError(f"{type(self).__name__} has no held-out test split.")
