"""Trainables that cannot run, malformed overrides, files that are not a spec, names that
are not folder names, and `run` refusing before Ray starts."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.experiments.fuzz.broken_inputs import (
    bad_overrides,
    good_overrides,
    trainable_paths,
)
from tests.experiments.fuzz.broken_specs import (
    _keyed,
    bad_combinations,
    missing_keys,
    unknown_keys,
    wrong_types,
)
from tests.experiments.fuzz.support import (
    FUZZ,
    VALID,
    Case,
    _cli,
    _dump,
    _is_utf8,
    _validate,
    _with,
    _write,
    assert_names,
    assert_refused,
    scalars,
)
from tunefleet.experiments import cli
from tunefleet.experiments.spec.experiment import (
    NAME_PATTERN,
)

TUNEFLEET = str(Path(sys.executable).with_name("tunefleet"))


@FUZZ
@given(path=trainable_paths)
def test_trainables_that_cannot_run(workdir: Path, user_modules: Path, path: str) -> None:
    _validate(workdir, (_with("trainable", path), ("trainable",)))


@FUZZ
@given(bad=bad_overrides, before=good_overrides, after=good_overrides)
def test_malformed_overrides(workdir: Path, bad: Case, before: list[str], after: list[str]) -> None:
    text, keys = bad
    _validate(workdir, (VALID, keys), *(f"--set={item}" for item in [*before, text, *after]))


def _twice(key: str) -> Case:
    """VALID with `key` written again after it: the message names the key and its line."""
    line = len(_dump(VALID).splitlines()) + 1
    return _dump(VALID) + _dump({key: VALID[key]}), (
        f"spec.yaml:{line}: not valid YAML (duplicate key '{key}')",
    )


@FUZZ
@given(
    case=st.one_of(
        _keyed(
            "spec.yaml: ",
            st.one_of(
                # not UTF-8: stray bytes after a valid spec, or a file of random bytes
                st.binary(min_size=1, max_size=16).map(
                    lambda b: _dump(VALID).encode() + b"\xff" + b
                ),
                st.binary(min_size=1, max_size=64).filter(lambda b: not _is_utf8(b)),
                # YAML that is not a mapping
                st.lists(scalars, max_size=4).map(_dump),
                scalars.map(_dump),
                st.sampled_from(
                    ["", "\n", "# nothing\n", "---\n", "~\n", "null\n", "[]\n", "''\n"]
                ),
            ),
        ),
        # a key written twice
        st.sampled_from(sorted(VALID)).map(_twice),
    )
)
def test_files_that_are_not_a_spec(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@pytest.mark.slow  # a valid spec: the command starts Ray early, then stops it
@FUZZ
@given(
    run=st.one_of(
        st.tuples(wrong_types, st.just(())),
        st.tuples(missing_keys, st.just(())),
        st.tuples(unknown_keys(), st.just(())),
        st.tuples(bad_combinations, st.just(())),
        st.tuples(
            trainable_paths.map(lambda p: (_with("trainable", p), ("trainable",))), st.just(())
        ),
        bad_overrides.map(lambda o: ((VALID, o[1]), (f"--set={o[0]}",))),
        st.text(max_size=12)
        .filter(lambda s: not re.fullmatch(NAME_PATTERN, s))
        .map(lambda n: ((VALID, ("--name: ",)), (f"--name={n}",))),
    )
)
def test_run_refuses_before_ray_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user_modules: Path,
    run: tuple[Case, tuple[str, ...]],
) -> None:
    import ray

    ray_was_up = ray.is_initialized()  # the session's Ray may be up already
    import ray

    (raw, keys), extra = run
    started: list[Any] = []
    monkeypatch.setattr(cli, "run_plan", lambda plan, options: started.append(plan))
    monkeypatch.chdir(tmp_path)
    spec = _write(tmp_path / "spec.yaml", raw)
    code, out, err = _cli("run", str(spec), "--storage", str(tmp_path / "store"), *extra)
    assert_refused(code, out, err)
    assert_names(err, keys)
    assert not started, "run_plan was called: Ray would have started"
    assert ray.is_initialized() == ray_was_up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no results, no store


# -------------------------------------------------------------------- files and paths


def _nested(depth: int) -> str:
    return _dump(VALID) + "deep: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe" + "name: x".encode("utf-16-le"), r"not UTF-8 text \(bad byte at offset 0\)"),
        ("name: café\n".encode("latin-1"), r"not UTF-8 text"),
        (b"\x00\x01\x02", r"not valid YAML"),
        (b"- name: x\n- mode: max\n", r"a spec must be a mapping .*, got a YAML list\.$"),
        (b"just some words\n", r"got a YAML str\.$"),
        (b"3.5\n", r"got a YAML float\.$"),
        (b"", r"got an empty file\.$"),
        (b"# only a comment\n", r"got an empty file\.$"),
        (b"name: [1\n", r"spec\.yaml:\d+: not valid YAML"),
        (b"name: fuzz\n  trainable: x\n", r"spec\.yaml:2: not valid YAML"),
        (b"\tname: fuzz\n", r"spec\.yaml:1: not valid YAML \(found character '\\t'"),
        (
            _dump(VALID).encode() + b"mode: min\n",
            r"spec\.yaml:\d+: not valid YAML \(duplicate key 'mode'\)\.$",
        ),
        (
            _dump({k: v for k, v in VALID.items() if k != "space"}).encode()
            + b"space:\n  x: {uniform: [0, 1]}\n  x: {uniform: [0, 2]}\n",
            r"duplicate key 'x'",
        ),
        (_dump(VALID).encode() + b"? [a, b]\n: 1\n", r"not valid YAML \(found unhashable key\)"),
        (_dump(VALID).encode() + b"? {a: 1}\n: 1\n", r"not valid YAML \(found unhashable key\)"),
        (_nested(60).encode(), r"nested more than 50 levels deep"),
        (_nested(5000).encode(), r"nested more than 50 levels deep"),
        (_dump(VALID).encode() + b"loop: &a [*a]\n", r"nested more than 50 levels deep"),
        (b"space: &a {x: *a}\n", r"not valid YAML \(found unconstructable recursive node\)"),
        (
            _dump(VALID).encode()
            + b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n".encode()
                for i in range(8)
            ),
            r"holds over 1000000 values once its YAML aliases are expanded",
        ),
        (
            b"x: !!python/object/apply:os.system ['true']\n",
            r"not valid YAML \(could not determine a constructor",
        ),
        (
            _dump(VALID).encode() + b"description: !!int abc\n",
            r"not valid YAML \(a value cannot be read: invalid literal",
        ),
        (
            _dump(VALID).encode() + b"description: 2020-13-45\n",
            r"not valid YAML \(a value cannot be read: month must be in 1\.\.12\)",
        ),
        (_dump(VALID).encode() + b'"bad\\nkey": 1\n', r"^tunefleet: error: bad\\nkey: unknown key"),
        (
            _dump(
                {**VALID, "stop": {"training_iteration": math.inf}, "scheduler": {"name": "asha"}}
            ).encode(),
            r"stop\.training_iteration: input should be a finite number, got inf\.$",
        ),
        (
            _dump({**VALID, "resources": {"cpu": 1e-320}}).encode(),
            r"resources\.cpu: Ray counts resources in steps of 0\.0001",
        ),
        (
            _dump({**VALID, "resources": {"cpu": math.inf}}).encode(),
            r"resources\.cpu: input should be a finite number, got inf\.$",
        ),
    ],
)
def test_unreadable_files(workdir: Path, content: bytes, message: str) -> None:
    spec = _write(workdir / "spec.yaml", content)
    code, out, err = _cli("validate", str(spec))
    assert_refused(code, out, err)
    assert re.search(message, err.rstrip("\n")), err


def test_a_spec_file_that_does_not_exist_or_is_a_folder(workdir: Path) -> None:
    for path, message in [
        (workdir / "nope.yaml", "nope.yaml: no such file."),
        (workdir / "no" / "such" / "dir.yaml", "dir.yaml: no such file."),
        (workdir, "cannot read (Is a directory)."),
        (workdir / "line\nbreak.yaml", "line\\nbreak.yaml: no such file."),
    ]:
        code, out, err = _cli("validate", str(path))
        assert_refused(code, out, err)
        assert err.rstrip().endswith(message), err


def test_a_spec_file_that_cannot_be_read(workdir: Path) -> None:
    spec = _write(workdir / "secret.yaml", VALID)
    spec.chmod(0)
    try:
        if os.geteuid() != 0:
            code, out, err = _cli("validate", str(spec))
        else:
            # Root reads any file: the command runs without the capabilities that let it
            # (util-linux's setpriv), as an ordinary user would.
            caps = "-dac_override,-dac_read_search"
            setpriv = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
            proc = subprocess.run(
                [*setpriv, TUNEFLEET, "validate", str(spec)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        assert_refused(code, out, err)
        assert "secret.yaml: cannot read (Permission denied)" in err, err
    finally:
        spec.chmod(0o644)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../elsewhere", "", "two words", "x\n"])
def test_run_refuses_a_name_that_is_not_a_folder_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """`--name ..` with `--overwrite` would delete the storage folder's parent."""
    monkeypatch.setattr(cli, "run_plan", lambda plan, options: pytest.fail("run_plan called"))
    spec = _write(tmp_path / "spec.yaml", VALID)
    code, out, err = _cli(
        "run", str(spec), "--storage", str(tmp_path / "store"), f"--name={name}", "--overwrite"
    )
    assert_refused(code, out, err)
    assert "--name: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tf_fuzz_exits:train", r"importing 'tf_fuzz_exits' raised SystemExit: 3; fix"),
        (
            "tf_fuzz_callables:partial_two",
            r"must take exactly one argument .* its signature is partial\(config, other\)",
        ),
        (
            "tf_fuzz_callables:instance_two",
            r"must take exactly one argument .* its signature is _Call\(config, other\)",
        ),
        (
            "tf_fuzz_callables:lazy",
            r"reading 'lazy' from 'tf_fuzz_callables' raised RuntimeError: no lazy here",
        ),
    ],
)
def test_trainables_that_exit_lack_a_name_or_raise_on_lookup_are_refused(
    workdir: Path, user_modules: Path, path: str, message: str
) -> None:
    spec = _write(workdir / "spec.yaml", _with("trainable", path))
    code, out, err = _cli("validate", str(spec), "--storage", str(workdir / "store"))
    assert_refused(code, out, err)
    assert re.search(message, err), err
