"""Strategies for broken trainables and `--set` overrides."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from tests.experiments.fuzz.broken_specs import SECTIONS, any_key
from tests.experiments.fuzz.support import (
    Case,
    Keys,
    words,
)
from tunefleet.experiments.spec.experiment import (
    ExperimentSpec,
)
from tunefleet.trainables.resolve import IMPORT_PATH_PATTERN

# Family: a trainable that does not import, is not there, or cannot be called as one.
USER_MODULES = {
    "tf_fuzz_raises": 'raise ValueError("broken\\nmodule")\n',
    "tf_fuzz_syntax": "def train(config:\n",
    "tf_fuzz_missing_dep": "import tf_fuzz_no_such_dependency\n",
    "tf_fuzz_shapes": (
        "class NotTrainable:\n    pass\n\n"
        "class SetupOnly:\n    def setup(self, config):\n        pass\n\n"
        "def no_args():\n    pass\n\n"
        "def three(config, a, b):\n    pass\n\n"
        "def keyword_only(*, config):\n    pass\n\n"
        "VALUES = [1, 2]\nNUMBER = 3\n"
    ),
}
BROKEN_TRAINABLES = [
    "tf_fuzz_raises:train",
    "tf_fuzz_syntax:train",
    "tf_fuzz_missing_dep:train",
    "tf_fuzz_shapes:NotTrainable",
    "tf_fuzz_shapes:SetupOnly",
    "tf_fuzz_shapes:no_args",
    "tf_fuzz_shapes:three",
    "tf_fuzz_shapes:keyword_only",
    "tf_fuzz_shapes:VALUES",
    "tf_fuzz_shapes:NUMBER",
    "tf_fuzz_shapes:missing",
    "tf_fuzz_shapes:three.missing",
    "tests.support.trainables:two_args",
    "tests.support.trainables:Counter.setup",
    "tests.support.trainables:linear.nothing",
    "tests.experiments.test_spec:BASE",
    "os:sep",
    "os:getcwd",
    "math:pi",
    "collections:OrderedDict",
]
identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
trainable_paths = st.one_of(
    st.sampled_from(BROKEN_TRAINABLES),
    # not an import path: spaces, extra or missing colons, empty parts, digits first
    st.text(max_size=30).filter(lambda s: not re.fullmatch(IMPORT_PATH_PATTERN, s)),
    st.builds(
        lambda a, b, sep: f"{a}{sep}{b}",
        identifier,
        identifier,
        st.sampled_from([" ", "::", ":", ". ", ":.", "/", "-", "", ": "]),
    ).filter(lambda s: not re.fullmatch(IMPORT_PATH_PATTERN, s)),
    # a module that is not there
    st.builds(lambda m, a: f"tf_fuzz_nowhere_{m}.{m}:{a}", identifier, identifier),
    # an attribute that is not there
    st.builds(lambda a: f"tests.support.trainables:zz_{a}", identifier),
)


# ------------------------------ trainables that exit, lack __name__ or raise on lookup

RESOLVE_MODULES = {
    "tf_fuzz_exits": "import sys\nsys.exit(3)\n",
    "tf_fuzz_callables": (
        "import functools\n\n"
        "def _two(config, other):\n    pass\n\n"
        "partial_two = functools.partial(_two)\n\n"
        "class _Call:\n    def __call__(self, config, other):\n        pass\n\n"
        "instance_two = _Call()\n\n"
        "def __getattr__(name):\n    raise RuntimeError(f'no {name} here')\n"
    ),
}


# Family: malformed `--set` overrides.
TOP = list(ExperimentSpec.model_fields)
BAD_YAML = [
    "[", "{", "[1,", "{a: 1", "]", "[1]]", "*undefined", "a: b: c", "'unclosed", '"unclosed',
    "\t- x", "- a\nb: c", "%", "@x", "`x", "{a: 1, a: 2}", "!!python/object/apply:os.system ['true']",
    "!!int abc", "!!float x", "!!bool maybe", "!!timestamp soon", "2020-13-45", "!!map x", "!!int",
    "---\n---", "? [a]\n: 1", "[" * 200 + "]" * 200,
]  # fmt: skip


def _override(keys: Keys | str, strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Case]:
    """Pairs each `--set` text with the keys its message may name."""
    return strategy.map(lambda text: (text, (keys,) if isinstance(keys, str) else keys))


bad_overrides: st.SearchStrategy[Case] = st.one_of(
    # no `=`
    _override("--set ", st.text(max_size=20).filter(lambda s: "=" not in s)),
    # an empty key or an empty part of one
    _override(
        "--set ",
        st.builds(
            lambda key, value: f"{key}={value}",
            st.sampled_from(["", " ", ".", "a.", ".a", "a..b", "search.", " . "]),
            st.integers(),
        ),
    ),
    # a key the spec does not know (named as --set writes it, or as the spec's key)
    st.builds(
        lambda key, value: (f"{key}={value}", ("--set ", key.strip().split(".")[0])),
        st.one_of(words, any_key.filter(lambda k: "=" not in k)).filter(
            lambda k: k.strip() and k.strip().split(".")[0] not in TOP
        ),
        st.integers(),
    ),
    st.builds(
        lambda section, key: (
            f"{section}.{key}=1",
            # A scheduler without `name:` is told to name one.
            (f"{section}.{key}", "scheduler: needs `name:`"),
        ),
        st.sampled_from(["search", "resources", "failure", "results", "scheduler"]),
        words.filter(lambda w: w not in SECTIONS["search"] + SECTIONS["resources"] + ["name"]),
    ),
    # a path through a value that is not a mapping
    st.builds(
        lambda path, key: (f"{path}.{key}=1", (f"--set {path}.{key}: '{path}' is",)),
        st.sampled_from(
            ["name", "mode", "trainable", "space.x.uniform", "search.num_samples", "space.steps"]
        ),
        words,
    ),
    # a value that is not YAML
    st.builds(
        lambda key, value: (f"{key}={value}", (f"--set {key}: ",)),
        st.sampled_from(["search.num_samples", "name", "space.x", "stop"]),
        st.sampled_from(BAD_YAML),
    ),
    # a value of the wrong type
    _override("search.num_samples: ", words.map(lambda value: f"search.num_samples={value}")),
    _override(
        "mode: ",
        words.filter(lambda w: w not in ("min", "max")).map(lambda value: f"mode={value}"),
    ),
    _override("space: ", st.integers().map(lambda value: f"space={value}")),
    _override(
        "space.x.uniform: ",
        st.integers(max_value=1).map(lambda value: f"space.x.uniform=[1, {value}]"),
    ),
)
good_overrides = st.lists(
    st.sampled_from(["search.seed=1", "description=fuzzed", "resources.gpu=0"]),
    max_size=2,
)
