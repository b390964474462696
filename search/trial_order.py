"""Which trial runs next: Ray's FIFO, ASHA and median-stopping schedulers, choosing the next
trial without rescanning finished ones.

Ray's `FIFOScheduler.choose_trial_to_run` (inherited by ASHA and median stopping) walks the
experiment's whole trial list, finished trials first, on every step of the controller: a
10,000-trial experiment pays a 10,000-trial scan several times per trial, and throughput
falls as the experiment grows (measured: the scan alone took 11 s of a 3,000-trial run's
128 s). These subclasses make the same choice (the first PENDING trial in creation order,
else the first PAUSED one) starting after the leading run of TERMINATED trials, which never
run again in the same run (`tunefleet.common.ray_compat.SkipFinishedTrials`, which reads
Ray's private trial controller). Everything else is Ray's.
"""

from __future__ import annotations

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule

from tunefleet.common.ray_compat import SkipFinishedTrials

__all__ = ["AshaScheduler", "FifoScheduler", "MedianStopping"]


class FifoScheduler(SkipFinishedTrials, FIFOScheduler):
    """Ray's `FIFOScheduler`."""


class AshaScheduler(SkipFinishedTrials, AsyncHyperBandScheduler):
    """Ray's `ASHAScheduler` (`AsyncHyperBandScheduler`)."""


class MedianStopping(SkipFinishedTrials, MedianStoppingRule):
    """Ray's `MedianStoppingRule`."""
