"""The evaluate flow measures the model `asif serve` serves unless told otherwise: its k and p
default to the model defaults, as serve's do, and prefect.yaml does not restate them."""

import inspect
from pathlib import Path

import yaml

from asif.cli import build_parser
from asif.evaluation.evaluate import EvalConfig
from asif.model.settings import ModelSettings

REPO = Path(__file__).resolve().parents[2]


def test_flow_defaults_are_the_served_settings():
    from flows.evaluate import evaluate

    params = inspect.signature(evaluate.fn).parameters
    config = EvalConfig.overriding(params["k"].default, params["p"].default)
    serve = build_parser().parse_args(["serve", "--table", "db"])
    assert (config.k, config.p) == (serve.k, serve.p)
    defaults = ModelSettings("image", "text")
    assert (config.k, config.p) == (defaults.k, defaults.p)


def test_the_deployment_does_not_restate_settings():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == "evaluate"]
    assert not {"k", "p", "strategy"} & set(deployment["parameters"])
