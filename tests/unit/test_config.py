
import pytest

from nmt.errors import ConfigError
from nmt.models import build_model
from nmt.models.seq2seq import count_parameters

from ..conftest import ROOT, compose

GROUPS = {g: sorted(p.stem for p in (ROOT / "configs" / g).glob("*.yaml"))
          for g in ("encoder", "attention", "decoder", "teacher_forcing", "optim", "data", "experiment", "debug")}


def test_every_group_has_the_required_options():
    assert {"birnn", "bigru", "bilstm", "stacked_gru", "stacked_lstm"} <= set(GROUPS["encoder"])
    assert {"none", "bahdanau", "luong_dot", "luong_general"} <= set(GROUPS["attention"])
    assert {"constant", "linear", "exponential", "inverse_sigmoid"} <= set(GROUPS["teacher_forcing"])
    assert {"toy", "bench_reference", "multi30k_de_en"} <= set(GROUPS["experiment"])


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_config_file_composes_and_builds(group, option):
    cfg = compose([f"{group}={option}"])
    if cfg.attention.kind == "luong_dot":
        cfg.decoder.hidden_size = cfg.encoder.hidden_size * (2 if cfg.encoder.bidirectional else 1)
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, 100, 100)
    assert count_parameters(model) > 0


def test_selecting_groups_on_the_command_line():
    cfg = compose(["encoder=bilstm", "attention=luong_general", "teacher_forcing=inverse_sigmoid", "optim.lr=5e-4"])
    assert cfg.encoder.cell == "lstm" and cfg.encoder.bidirectional
    assert cfg.attention.kind == "luong_general"
    assert cfg.teacher_forcing.schedule == "inverse_sigmoid" and cfg.optim.lr == 5e-4
    # the experiment's sizes stay
    assert cfg.encoder.hidden_size == 128


def test_unknown_keys_and_wrong_types_fail_naming_the_key():
    with pytest.raises(ConfigError, match="max_stepz"):
        compose(["train.max_stepz=3"])
    with pytest.raises(ConfigError, match="train.max_steps"):
        compose(["train.max_steps=many"])


def test_bench_reference_has_about_12m_parameters():
    cfg = compose(["experiment=bench_reference"])
    n = count_parameters(build_model(cfg.encoder, cfg.attention, cfg.decoder, 8000, 8000))
    assert 11.5e6 < n < 12.5e6, n


def test_choices_are_enums_refused_at_composition_with_the_allowed_values():
    for override, allowed in (("teacher_forcing.feed=argmx", "argmax"), ("train.precision=fp8", "fp16"),
                              ("encoder.cell=lstn", "lstm"), ("optim.scheduler=step_decay", "plateau"),
                              ("attention.kind=luong", "luong_general"), ("data.spm.model_type=wordpiece", "bpe")):
        with pytest.raises(ConfigError) as e:
            compose([override])
        assert allowed in str(e.value), override


@pytest.mark.parametrize("override,key", [
    ("train.max_steps=-5", "train.max_steps"), ("train.clip_grad_norm=-1", "train.clip_grad_norm"),
    ("optim.lr=0", "optim.lr"), ("train.max_tokens=3", "train.max_tokens"), ("encoder.num_layers=0", "encoder.num_layers"),
    ("encoder.hidden_size=0", "encoder.hidden_size"), ("decoder.dropout=1.5", "decoder.dropout"),
    ("train.label_smoothing=1", "train.label_smoothing"), ("teacher_forcing=exponential", "teacher_forcing.k"),
    ("attention=luong_dot", "decoder.hidden_size"), ("train.accum_steps=0", "train.accum_steps"),
    ("data.spm.sampling_alpha=-0.1", "data.spm.sampling_alpha"), ("data.spm.sampling_nbest=1", "data.spm.sampling_nbest"),
    ("data.spm.model_type=bpe", "data.spm.sampling_alpha")])
def test_validate_names_the_key(override, key):
    from nmt.config import validate
    extra = {"teacher_forcing=exponential": ["teacher_forcing.k=2"],
             "attention=luong_dot": ["decoder.hidden_size=100"],
             "data.spm.model_type=bpe": ["data.spm.sampling_alpha=0.1"]}.get(override, [])
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate(compose([override, *extra]))


def test_shipped_configs_validate_and_every_experiment_stops_by_itself():
    from nmt.config import validate
    for experiment in GROUPS["experiment"]:
        cfg = compose([f"experiment={experiment}"])
        validate(cfg)
        t = cfg.train
        assert t.max_steps or t.max_epochs or t.max_minutes or t.patience, experiment


def test_keys_outside_the_schema_are_refused_with_a_suggestion():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from nmt.config import check_known_keys

    def raw(overrides):
        with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
            return OmegaConf.to_container(hydra_compose(config_name="train", overrides=overrides), resolve=False)

    with pytest.raises(ValueError, match="train.max_step.*did you mean 'train.max_steps'"):
        check_known_keys(raw(["+train.max_step=10"]))
    check_known_keys(raw([]))


def test_typed_config_roundtrips_through_plain_values():
    from nmt.config import Cell, from_dict, to_dict
    cfg = compose(["encoder=bilstm"])
    plain = to_dict(cfg)
    assert plain["encoder"]["cell"] == "lstm" and isinstance(plain["optim"]["betas"], list)
    back = from_dict(plain)
    assert back.encoder.cell is Cell.lstm and back == cfg


def test_the_key_policies_name_real_keys_and_nest():
    """Node-local keys (may differ between ranks) may change on resume; keys that may change on
    resume never change what the model computes; every key named is in the schema."""
    from nmt.config import NODE_LOCAL_KEYS, RESUMABLE_KEYS, Config, affects_model, flatten, to_dict
    schema = set(flatten(to_dict(Config())))
    assert NODE_LOCAL_KEYS <= RESUMABLE_KEYS <= schema
    assert not any(affects_model(key) for key in RESUMABLE_KEYS)
    assert affects_model("decoder.hidden_size") and affects_model("data.spm.vocab_size")
