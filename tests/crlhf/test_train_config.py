"""crlhf train's config file: errors name the file, table and key; every shipped config loads
and config.json records what it sets; old table and key names still load; the [sft] table
mirrors crlhf.sft.sft()."""

import tomllib
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the tables' types come from PPOConfig, LoopConfig, ...

from crlhf.train_config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("text, match", [
    ("[loop]\nroundz = 2\n", r"bad\.toml: \[loop\] unknown key 'roundz'; known keys: .*rounds"),
    ("[loop]\nrounds = \"two\"\n", r"bad\.toml: \[loop\] rounds: expected an integer, got 'two'"),
    ("[eval]\ntemperatures = 0.2\n", r"bad\.toml: \[eval\] temperatures: expected a list of numbers, got 0.2"),
    ("[ppo]\nadam_betas = [0.9]\n", r"bad\.toml: \[ppo\] adam_betas: expected a list of 2 numbers"),
    ("[lora]\nenabled = 1\n", r"bad\.toml: \[lora\] enabled: expected true or false, got 1"),
    ("[crowd_model]\ntau = \"high\"\n", r"bad\.toml: \[crowd_model\] tau: expected a number"),
    ("[crowd_model]\nreliabilty = \"eq8\"\n", r"bad\.toml: \[crowd_model\] unknown key 'reliabilty'"),
    ("[traning]\nx = 1\n", r"bad\.toml: unknown table \[traning\]; known tables: .*\[loop\]"),
    ("outt = \"x\"\n", r"bad\.toml: unknown key 'outt'"),
    ("seeds = [1, 1]\n", r"bad\.toml: seeds: expected a non-empty list of distinct"),
    ("[ppo]\nseed = 3\n", r"bad\.toml: \[ppo\] seed: not settable here: set by the top-level `seeds`"),
    ("[ppo]\ntemperature = 0.5\n", r"\[ppo\] temperature: not settable here: .*\[loop\] temperature"),
    ("[loop]\nreward = \"vibes\"\n", r"bad\.toml: \[loop\] LoopConfig\.reward must be one of"),
    ("[ppo]\nlearning_rate = 0\n", r"bad\.toml: \[ppo\] PPOConfig\.learning_rate must be > 0"),
    ("[eval]\nn = 0\n", r"bad\.toml: \[eval\] n takes positive integers"),
    ("[eval]\ntasks = [\"humaneval\", \"apps\"]\n", r"bad\.toml: \[eval\] tasks: unknown task set 'apps'"),
    ("[crowd_model]\nreliability = \"coin\"\n", r"bad\.toml: \[crowd_model\] reliability must be one of"),
    ("[crowd]\ntau = 0.5\n[crowd_model]\ntau = 0.6\n", r"bad\.toml: table: 'crowd' and 'crowd_model' both given"),
    ("[ppo]\nlam = 0.5\ngae_lambda = 0.6\n", r"bad\.toml: \[ppo\]: 'lam' and 'gae_lambda' both given"),
    ("[prompts]\ntasks = \"humaneval\"\n", r"bad\.toml: \[prompts\] tasks: expected one of minicode, mbpp"),
    ("[loop]\ncrowd = \"store\"\n", r"bad\.toml: \[loop\] crowd = 'store' needs a label store: set db"),
    ("[sft]\ndata = \"no/such/file.jsonl\"\n", r"bad\.toml: \[sft\] data: no file or folder"),
    ("[loop\nrounds = 2\n", r"bad\.toml: invalid TOML: .*line 1"),
])
def test_config_errors_name_the_file_table_and_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_config_json_records_what_it_sets(tmp_path, path):
    data = tomllib.loads(path.read_text())
    store = data.get("loop", {}).get("crowd") == "store"
    if store:  # a class config needs the label store named
        with pytest.raises(ConfigError, match=r"\[loop\] crowd = 'store' needs a label store"):
            load_config(path)
    resolved = load_config(path, db=str(tmp_path / "class.db") if store else None).to_dict()
    for key, value in data.items():
        if isinstance(value, dict):
            for k, v in value.items():
                assert resolved[key][k] == v, (path.name, key, k)
        else:
            assert resolved[key] == value, (path.name, key)


def test_old_names_in_a_config_still_work_with_a_warning(tmp_path):
    """``[crowd]`` (now ``[crowd_model]``) and ``[ppo] lam`` (now ``gae_lambda``) from configs
    written before the renames load as the new names, with a FutureWarning the command line shows."""
    path = tmp_path / "old.toml"
    path.write_text("[ppo]\nlam = 0.5\n[crowd]\ntau = 0.6\nreliability = \"eq8\"\n")
    with pytest.warns(FutureWarning) as caught:
        cfg = load_config(path)
    messages = [str(w.message) for w in caught]
    assert any("'crowd' is now 'crowd_model'" in m for m in messages), messages
    assert any("[ppo]: 'lam' is now 'gae_lambda'" in m for m in messages), messages
    assert cfg.crowd_model == {"tau": 0.6, "reliability": "eq8"} and cfg.ppo == {"gae_lambda": 0.5}
    loop = cfg.loop_config(0, None)
    assert loop.ppo.gae_lambda == 0.5 and loop.crowd_model["reliability"] == "eq8"


def test_sft_table_defaults_are_the_sft_functions():
    """``[sft]`` mirrors :func:`crlhf.sft.sft` (typed, for checking the TOML): every key is one of
    its arguments, with the same default, so the two cannot drift apart."""
    import dataclasses
    import inspect

    from crlhf.sft import sft
    from crlhf.train_config import SFTSettings

    params = inspect.signature(sft).parameters
    for f in dataclasses.fields(SFTSettings):
        if f.name == "data":  # required by sft(); None here means "no SFT"
            continue
        assert f.name in params, f.name
        assert f.default == params[f.name].default, f.name
