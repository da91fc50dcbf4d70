"""Load tests: a model under concurrent requests from the user's own prompts (time to first
token, inter-token and end-to-end latency, tokens/s per stream and in aggregate, errors)."""

from modelatlas.loadtest.plan import run_loadtest, workload
from modelatlas.loadtest.results import LevelResult, LoadReport, Percentiles, RequestSample
from modelatlas.loadtest.runner import load_test, parse_duration, parse_levels, run_level
from modelatlas.loadtest.senders import HttpSender, ModelSender

__all__ = [
    "HttpSender",
    "LevelResult",
    "LoadReport",
    "ModelSender",
    "Percentiles",
    "RequestSample",
    "load_test",
    "parse_duration",
    "parse_levels",
    "run_level",
    "run_loadtest",
    "workload",
]
