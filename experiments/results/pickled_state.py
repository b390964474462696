"""Reading Ray's saved experiment state trusts the folder it comes from.

Ray keeps an experiment's trials, searcher and callbacks as pickles in its experiment state.
`tunefleet resume` (through Ray's `Tuner.restore`) and `tunefleet export` (through Ray's
`ExperimentAnalysis`) unpickle them, and unpickling can run code: both commands say so in
their help, and `export`, which also reads folders Ray Tune wrote without tunefleet, prints a
one-line warning for a folder that holds no `spec.yaml` (every `tunefleet run` writes one).
"""

from __future__ import annotations

from tunefleet.experiments.results.files import SPEC_FILE

__all__ = ["foreign_folder_warning", "trust_notice"]


def trust_notice(command: str) -> str:
    """The sentence `tunefleet COMMAND` gives about the folders it unpickles."""
    return (
        f"Ray's saved experiment state is unpickled, which can run code: {command} only "
        "folders you trust."
    )


def foreign_folder_warning(exp_dir: str, command: str) -> str | None:
    """The warning line for a folder tunefleet did not write, or None when it holds
    tunefleet's `spec.yaml`.

    Args:
        exp_dir: The experiment folder: a local path or a pyarrow filesystem URI.
        command: The command about to read it (`export`).
    """
    # pyarrow and Ray Tune: the CLI's help texts use `trust_notice` before Ray starts.
    from tunefleet.experiments.results.parquet_io import join_path, path_exists

    if path_exists(join_path(exp_dir, SPEC_FILE)):
        return None
    return (
        f"warning: {exp_dir} holds no {SPEC_FILE}, so tunefleet did not write it; "
        f"{trust_notice(command)}"
    )
