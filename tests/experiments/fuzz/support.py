"""Shared pieces of the bad-spec fuzz tests.

Bad input, fuzzed: every malformed spec, override or file ends with exit code 2 and one
line on stderr that names the problem; never a traceback, never a started Ray.

Each property starts from a valid spec and breaks it in one way (one family of breakage per
strategy), writes it to a file and runs `tunefleet validate` (and `tunefleet run` for a
sample) through `main()` in this process. Each strategy draws a case: the broken input and
the keys (or file and line) the message may name to point at what is wrong; the message
must name one of them."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tunefleet.experiments import cli

FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID: dict[str, Any] = {
    "name": "fuzz",
    "trainable": "tests.support.trainables:linear",
    "metric": "score",
    "mode": "max",
    "space": {"x": {"uniform": [0.0, 1.0]}, "steps": 2},
    "search": {"num_samples": 2, "seed": 0},
    "resources": {"cpu": 1},
    "stop": {"training_iteration": 2},
}
# The same with an early-stopping scheduler, to break the scheduler's own keys.
SCHEDULED: dict[str, Any] = {**VALID, "scheduler": {"name": "asha", "max_t": 9}}


# ----------------------------------------------------------------------------- helpers


def _cli(*argv: str) -> tuple[int, str, str]:
    """Runs `tunefleet ARGV` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse, or anything else that exits
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, out: str, err: str) -> None:
    """Exit code 2, nothing on stdout, exactly one `tunefleet: error: ...` line on stderr."""
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert "Traceback" not in out + err, err
    assert out == "", out
    assert err.startswith("tunefleet: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1 and "\r" not in err, repr(err)
    assert len(err.rstrip("\n").splitlines()) == 1, repr(err)
    assert len(err.strip()) > len("tunefleet: error: "), err


Keys = tuple[str, ...]
Case = tuple[Any, Keys]  # the spec (mapping, text or bytes) and the keys one of which is named


def _shown(text: str) -> str:
    """A key as the one-line message writes it (unprintable characters escaped)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def assert_names(err: str, keys: Keys) -> None:
    """The message names one of `keys` (a spec key such as `search.num_samples`, an
    option such as `--set search.x`, or the file and line)."""
    assert any(_shown(k) in err for k in keys), f"names none of {keys}: {err!r}"


def _dump(raw: Any) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def _write(path: Path, content: Any) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else _dump(content), "utf-8")
    return path


def _validate(workdir: Path, case: Case, *extra: str) -> None:
    content, keys = case
    spec = _write(workdir / "spec.yaml", content)
    code, out, err = _cli("validate", str(spec), "--storage", str(workdir / "store"), *extra)
    assert_refused(code, out, err)
    assert_names(err, keys)


def _with(path: str, value: Any, base: dict[str, Any] = VALID) -> dict[str, Any]:
    """A copy of `base` with the dotted key `path` set to `value`."""
    raw = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


# ---------------------------------------------------------------------------- strategies


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Strings pydantic would not read as a number or a bool (`"3"`, `"inf"`, `"on"` it would).
_LAX_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "t", "f"}


def _is_word(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.lower() not in _LAX_WORDS
    return False


words = st.text(string.ascii_letters, min_size=1, max_size=8).filter(_is_word)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
containers = st.one_of(
    st.lists(scalars, max_size=3), st.dictionaries(words, scalars, min_size=1, max_size=3)
)
# Not a string (None is left out: it is the default of optional keys).
non_text = st.one_of(containers, st.integers(), st.floats(), st.booleans())
# Not a number (pydantic reads bools and numeric strings as numbers, so neither is here).
non_number = st.one_of(containers, words)
non_int = st.one_of(
    non_number,
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
)
non_bool = st.one_of(containers, words, st.integers().filter(lambda i: i not in (0, 1)))
non_finite = st.sampled_from([math.inf, -math.inf, math.nan])
non_mapping = st.one_of(
    st.lists(scalars, max_size=3), st.integers(), st.floats(), st.booleans(), words
)


def _not_one_of(options: Any) -> st.SearchStrategy[Any]:
    return st.one_of(non_text, words.filter(lambda w: w not in options))
