"""Every decoding default and choice has one owner, ``SearchOptions`` (and ``INFERENCE_PRECISIONS``
for the translation precision): nmt-translate's and nmt-serve's flags, the server's settings and the
Python API take theirs from it."""
import dataclasses
import inspect

import pytest

import nmt
from nmt.api import Model
from nmt.cli import serve as serve_cli
from nmt.cli import translate as translate_cli
from nmt.cli.options import FLAG_DESTS, search_flag_values
from nmt.config import FROM_CHECKPOINT, INFERENCE_PRECISIONS, Precision
from nmt.search.options import PENALTIES, Penalty, SearchOptions

DEFAULTS = SearchOptions()


def flag(field: str) -> str:
    """The command-line flag of a SearchOptions field."""
    return "--" + FLAG_DESTS.get(field, field).replace("_", "-")


def _actions(cli) -> dict:
    """The actions of a program's argument parser, by option string."""
    return {o: a for a in cli.build_parser()._actions for o in a.option_strings}


def test_every_search_field_is_a_translate_flag_with_the_same_default():
    actions = _actions(translate_cli)
    for f in dataclasses.fields(SearchOptions):
        if f.name == "strategy":  # --greedy / --sample
            continue
        action = actions[flag(f.name)]
        assert action.default == getattr(DEFAULTS, f.name), f.name
    assert tuple(actions["--penalty"].choices) == PENALTIES == tuple(m.value for m in Penalty)
    assert tuple(actions["--precision"].choices) == INFERENCE_PRECISIONS
    assert actions["--precision"].default == FROM_CHECKPOINT == inspect.signature(Model.__init__).parameters[
        "precision"].default
    assert set(INFERENCE_PRECISIONS) == {FROM_CHECKPOINT} | {m.value for m in Precision}


def test_the_servers_flags_settings_and_the_api_share_the_defaults():
    from nmt.serve import Settings
    actions = _actions(serve_cli)
    for name in ("beam_size", "alpha", "penalty", "coverage_penalty", "max_len_a", "max_len_b"):
        assert actions[flag(name)].default == getattr(DEFAULTS, name), name
    server_search = search_flag_values(serve_cli.build_parser().parse_args(["ckpt"]))
    assert set(server_search) == {"alpha", "penalty", "coverage_penalty", "max_len_a", "max_len_b"}
    assert SearchOptions(**server_search) == DEFAULTS  # the flags' defaults are the options' defaults
    assert tuple(actions["--precision"].choices) == INFERENCE_PRECISIONS
    assert Settings().beam == DEFAULTS.beam_size
    params = inspect.signature(Model.translate).parameters
    assert params["beam"].default == DEFAULTS.beam_size and params["nbest"].default == DEFAULTS.nbest
    assert inspect.signature(nmt.load).parameters["precision"].default == FROM_CHECKPOINT  # spelled out there


def test_every_search_field_is_a_request_field_or_left_to_the_servers_flags():
    pytest.importorskip("fastapi")
    from nmt.serve.app import REQUEST_SEARCH, TranslateRequest
    request = TranslateRequest.model_fields
    sampling = {"strategy", "temperature", "top_k", "top_p", "seed"}  # nmt-translate and the API only
    assert set(REQUEST_SEARCH) | {"beam_size", "nbest"} | sampling == {f.name for f in dataclasses.fields(SearchOptions)}
    for name in REQUEST_SEARCH:  # absent: the server's own default (its flag's, which is SearchOptions')
        assert request[name].default is None, name
    assert request["beam"].default is None and request["nbest"].default == DEFAULTS.nbest


def test_every_inference_setting_is_a_flag_and_an_api_default_with_the_same_value():
    from nmt.cli import score as score_cli
    from nmt.config import InferenceSettings
    from nmt.translator import Translator
    settings = InferenceSettings()
    translate = _actions(translate_cli)
    for f in dataclasses.fields(InferenceSettings):
        action = translate["--" + f.name.replace("_", "-")]
        assert action.default == getattr(settings, f.name), f.name
    serve = _actions(serve_cli)
    for name in ("device", "precision", "int8", "fp16_weights", "threads", "shortlist", "shortlist_frequent"):
        assert serve["--" + name.replace("_", "-")].default == getattr(settings, name), name
    score = _actions(score_cli)
    for name in ("device", "threads", "batch_size", "max_tokens"):
        assert score["--" + name.replace("_", "-")].default == getattr(settings, name), name
    load = inspect.signature(nmt.load).parameters
    for name in ("device", "precision", "int8", "fp16_weights"):
        assert load[name].default == getattr(settings, name), name
    translate_api = inspect.signature(Model.translate).parameters
    for name in ("batch_size", "shortlist", "shortlist_frequent"):
        assert translate_api[name].default == getattr(settings, name), name
    made = inspect.signature(Translator.__init__).parameters
    assert made["batch_size"].default == settings.batch_size and made["max_tokens"].default == settings.max_tokens



def test_the_per_line_inputs_are_declared_once_for_the_cli_the_api_and_the_server():
    pytest.importorskip("fastapi")
    from nmt.cli import score as score_cli
    from nmt.guides import CONSTRAINTS, FACTORS, PREFIX
    from nmt.serve.app import TranslateRequest
    actions = _actions(translate_cli)
    params = inspect.signature(Model.translate).parameters
    for given in (PREFIX, CONSTRAINTS):
        assert actions[given.flag].help.endswith(given.help)
        assert given.name in params and given.help in " ".join(Model.translate.__doc__.split())
        assert TranslateRequest.model_fields[given.name].description == f"per line, {given.help}"
    for program in (translate_cli, score_cli):  # source factors: NAME=FILE per factor
        assert _actions(program)[FACTORS.flag].help.startswith(FACTORS.help)
    assert FACTORS.name in params and FACTORS.help in " ".join(Model.translate.__doc__.split())
    assert FACTORS.help in TranslateRequest.model_fields[FACTORS.name].description
