"""Lazy re-exports, the start-up timeline and hiding unused tracking libraries from Ray Tune's
telemetry: each checked in a fresh interpreter where `sys.modules` matters."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tunefleet.common import timeline

REPO = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_a_lazy_name_loads_its_module_on_first_use_only() -> None:
    out = _python(
        """
        import sys
        import tunefleet.trainables as t
        print("torch" in sys.modules, "report" in dir(t))
        from tunefleet.trainables import TorchTrainable, report
        print("torch" in sys.modules, TorchTrainable.__name__)
        """
    )
    # torch loads with the PyTorch wrapper, not with the package (Ray Tune does: resolving a
    # trainable checks for Ray's `Trainable` class).
    assert out.split() == ["False", "True", "True", "TorchTrainable"]


def test_the_type_checking_block_lists_the_lazy_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            from tunefleet.common.lazy import lazy_exports

            if TYPE_CHECKING:
                from lazy_pkg.heavy import weight as weight
                from lazy_pkg.heavy import weight as renamed
                version: str

            __getattr__, __dir__ = lazy_exports(__name__)
            """
        )
    )
    (package / "heavy.py").write_text("weight = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazy_pkg

    try:
        assert lazy_pkg.__all__ == ["renamed", "version", "weight"]
        assert {"renamed", "weight"} <= set(dir(lazy_pkg))
        assert "lazy_pkg.heavy" not in sys.modules
        assert lazy_pkg.renamed == 42
        assert "lazy_pkg.heavy" in sys.modules
        assert vars(lazy_pkg)["renamed"] == 42  # kept: later reads skip __getattr__
        assert lazy_pkg.weight == 42
        for missing in ("nope", "version"):  # `version` is the package's own to provide
            with pytest.raises(
                AttributeError, match=rf"module 'lazy_pkg' has no attribute '{missing}'"
            ):
                getattr(lazy_pkg, missing)
    finally:
        for name in ("lazy_pkg", "lazy_pkg.heavy"):
            sys.modules.pop(name, None)


def test_the_timeline_is_written_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "timeline.txt"
    monkeypatch.delenv(timeline.TIMELINE_ENV, raising=False)
    timeline.mark("ignored")
    assert not path.exists()
    monkeypatch.setenv(timeline.TIMELINE_ENV, str(path))
    for step in ("ray_up", "fit_started", "ray_up"):
        timeline.mark(step)
    first = timeline.read(path)
    assert list(first) == ["ray_up", "fit_started"]
    assert first["ray_up"] <= first["fit_started"]
    assert path.read_text().count("ray_up") == 2  # every mark kept, the first one read


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs mlflow")
def test_unused_tracking_libraries_stay_unimported_and_come_back_afterwards() -> None:
    out = _python(
        """
        import sys
        from tunefleet.common.ray_compat import unused_tracking_hidden
        with unused_tracking_hidden():
            import ray.air.integrations.mlflow as integration  # what Ray's telemetry imports
            print(integration.mlflow is None, "mlflow" in sys.modules and sys.modules["mlflow"])
        print("mlflow" in sys.modules, "ray.air.integrations.mlflow" in sys.modules)
        import ray.air.integrations.mlflow as again
        print(again.mlflow is not None)
        """
    )
    assert out.split() == ["True", "None", "False", "False", "True"]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs mlflow")
def test_a_tracking_library_the_run_uses_is_not_hidden() -> None:
    out = _python(
        """
        from tunefleet.common.ray_compat import unused_tracking_hidden
        with unused_tracking_hidden(["mlflow"]):
            import ray.air.integrations.mlflow as integration
            print(integration.mlflow is not None)
        """
    )
    assert out.split() == ["True"]


def test_the_collector_pauses_for_start_up_and_resumes_with_the_start_up_objects_frozen() -> None:
    out = _python(
        """
        import gc
        from tunefleet.common import startup
        def collections():
            return sum(s["collections"] for s in gc.get_stats())

        before = collections()
        startup.pause()
        paused = (gc.isenabled(), startup.paused())
        made = [[object()] for _ in range(50_000)]  # start-up objects
        collections = collections() - before
        startup.resume()
        print(paused, collections, gc.isenabled(), startup.paused(), gc.get_freeze_count())
        """
    )
    # Paused, and no collection ran while 50,000 lists were made; then on again, and the
    # start-up's objects (the lists among them) out of the collector's sight.
    assert out.startswith("(False, True) 0 True False "), out
    assert int(out.split()[-1]) >= 50_000, out


def test_resume_without_pause_changes_nothing_and_a_collector_off_by_choice_stays_off() -> None:
    out = _python(
        """
        import gc
        from tunefleet.common import startup
        startup.resume()  # any command may call it: nothing was paused
        print(gc.isenabled(), gc.get_freeze_count())
        gc.disable()  # the caller's choice
        startup.pause()
        startup.resume()
        print(gc.isenabled(), gc.get_freeze_count())
        """
    )
    assert out.split() == ["True", "0", "False", "0"]
