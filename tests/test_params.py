"""params.yaml validation: each kind of bad value stops with one line naming the key."""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml

from pipeline.core.errors import ParamError
from pipeline.core.params import load_params, parse
from pipeline.core.settings import settings_from
from pipeline.superres.config import SuperresConfig
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(ROOT / "params.yaml")


def test_the_real_params_file_parses(params):
    settings = settings_from(params)
    cfg = parse(SuperresConfig, params["superres"], "superres")
    assert settings.scale in ("full", "smoke")
    assert cfg.variants["literal"].hidden == (64, 128) and cfg.variants["literal"].target == "pixel"
    assert cfg.train.epochs == 50 and len(cfg.images.names) == 10


@pytest.mark.parametrize("name", ["params.yaml", "dvc.yaml"])
def test_dvc_reads_the_repository_s_yaml_with_libyaml_as_yaml_reads_it(name):
    """DVC parses these with ruamel.yaml's "safe" loader, which uses libyaml's parser where
    ruamel.yaml.clib is installed (the lock has it; DVC installs with ruamel.yaml before 0.19 have it
    too). It refuses what ruamel's own parser takes, `[skimage:astronaut]` (a colon inside a plain
    scalar of a flow list): then every dvc command fails. Such values are quoted."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    loader = YAML(typ="safe")
    assert CParser is not None and loader.Parser is CParser          # the C parser is the one checked
    text = (ROOT / name).read_text()
    assert loader.load(text) == yaml.safe_load(text)
    with pytest.raises(Exception, match="found unexpected ':'"):    # and it is the strict one
        YAML(typ="safe").load("names: [skimage:astronaut]\n")


def test_theory_section_parses_and_rejects_bad_values(params):
    from pipeline.theory.config import TheoryConfig

    cfg = parse(TheoryConfig, params["theory"], "theory")
    assert cfg.dilation.kernels == (1, 2, 3, 5) and cfg.residual.depth == 30
    bad = copy.deepcopy(params["theory"])
    bad["symmetry"]["dropout"] = 1.0
    with pytest.raises(ParamError, match=r"^theory\.symmetry\.dropout: must be less than 1, got 1\.0$"):
        parse(TheoryConfig, bad, "theory")


def test_separable_section_parses(params):
    from pipeline.separable.study import SeparableConfig

    cfg = parse(SeparableConfig, params["separable"], "separable")
    assert cfg.centers == ((-1.0, -1.0), (1.0, 1.0)) and cfg.train.epochs == 200 and cfg.hidden == 8
    bad = copy.deepcopy(params["separable"])
    bad["centers"] = [[-1, "a"]]
    with pytest.raises(ParamError, match=r"^separable\.centers\[0\]\[1\]: must be a number, got 'a'$"):
        parse(SeparableConfig, bad, "separable")


def test_smoke_scale_shrinks_data_and_epochs(params):
    cfg = parse(SuperresConfig, params["superres"], "superres").at_scale("smoke")
    assert cfg.images.size == 32 and len(cfg.images.names) == 3 and cfg.train.epochs == 2


def _set(section: dict, dotted: str, value):
    node = section
    *path, last = dotted.split(".")
    for k in path:
        node = node[k]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

BAD = [
    ("train.lrr", 0.1, "superres.train.lrr: unknown key; allowed keys: epochs, batch_size, lr"),
    ("train.epochs", _DELETE, "superres.train.epochs: missing; expected a whole number"),
    ("train.epochs", 2.5, "superres.train.epochs: must be a whole number, got 2.5"),
    ("train.epochs", 0, "superres.train.epochs: must be at least 1, got 0"),
    ("train.lr", -0.001, "superres.train.lr: must be greater than 0, got -0.001"),
    ("train.lr", "fast", "superres.train.lr: must be a number, got 'fast'"),
    ("train.optimizer", "adamax", "superres.train.optimizer: 'adamax' is not allowed; choose one of adam, adamw, sgd"),
    ("train.monitor", "accuracy", "superres.train.monitor: 'accuracy' is not a history key; use train_loss"),
    ("train.accumulate", 512, "superres.train.accumulate: 512 micro-batches cannot split a batch of 256"),
    ("variants.literal.factor", 3, "superres.variants.literal.factor: 3 is not allowed; choose one of 2, 4"),
    ("variants.literal.residual", "no", "superres.variants.literal.residual: must be true or false, got 'no'"),
    ("variants.literal.hidden", [64, 0], "superres.variants.literal.hidden[1]: must be at least 1, got 0"),
    ("variants.literal.hidden", [], "superres.variants.literal.hidden: needs at least 1 item(s), got 0"),
    ("images.size", 30, "superres.images.size: must be divisible by 4"),
    ("images.names", ["skimage:astronaut", "skimage:lena"], "superres.images.names[1]: 'skimage:lena' is not a known image"),
    ("features.split", [0.7, 0.2, 0.2], "superres.features.split: train/test/validation fractions must add up to 1"),
    ("features.split", [0.7, 0.3], "superres.features.split: needs at least 3 item(s), got 2"),
]


@pytest.mark.parametrize("key,value,message", BAD, ids=[b[0] + "=" + repr(b[1])[:12] for b in BAD])
def test_bad_values_name_the_key_and_what_is_allowed(params, key, value, message):
    section = copy.deepcopy(params["superres"])
    _set(section, key, value)
    with pytest.raises(ParamError) as err:
        parse(SuperresConfig, section, "superres")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("raw,message", [
    ({"device": "gpu"}, "device: 'gpu' is not allowed; choose one of auto, cpu, cuda, cuda:N, mps"),
    ({"precision": "fp8"}, "precision: 'fp8' is not allowed; choose one of auto, bf16, fp16, fp32"),
    ({"deterministic": "sometimes"}, "deterministic: must be true or false, got 'sometimes'"),
    ({"seed": -1}, "seed: must be at least 0, got -1"),
    ({"scale": "tiny"}, "scale: 'tiny' is not allowed; choose one of full, smoke"),
    ({"data": {"mirorr": "x"}}, "data.mirorr: unknown key; allowed keys: mirror"),
])
def test_bad_global_settings(raw, message):
    with pytest.raises(ParamError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        settings_from(raw)


def test_a_stage_with_a_bad_param_prints_one_line_and_writes_nothing(tmp_path, params):
    bad = copy.deepcopy(params)
    bad["superres"]["train"]["lr"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.superres", "features"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: superres.train.lr: must be greater than 0, got 0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_unknown_experiment_and_variant_are_named(tmp_path, params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *a: subprocess.run([sys.executable, "-m", *a], cwd=tmp_path, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    proc = run("stages.superres", "train", "tiny")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: superres.variants.tiny: no such variant; "
                                   "choose one of literal, refine, subpixel, subpixel4x")
    proc = run("stages.superres", "mnist")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: 'mnist': no such stage here; choose one of features, train, evaluate, report"
    proc = run("stages.superres", "train")
    assert proc.returncode == 2 and proc.stderr.startswith("error: train: takes 1 argument(s) (variant), got 0;")
