"""Old names keep working for a while, each with a warning naming the new one
(:mod:`crlhf._deprecation`): names that moved to another module, and renamed fields."""

import importlib
import re
from dataclasses import dataclass

import pytest

from crlhf._deprecation import renamed_fields, renamed_keys

# old module -> {name: new home}; a name taken out of here breaks old imports, so it is pinned by hand
MOVED = {
    "crlhf.crowd": {"replay_log": "crlhf.replay", "IncrementalReplay": "crlhf.replay", "labels_frame": "crlhf.replay",
                    "scores_at": "crlhf.crowd_views", "truth_frame": "crlhf.crowd_views",
                    "threshold_curve": "crlhf.crowd_views", "annotator_summary": "crlhf.crowd_views",
                    "LINE_COLUMNS": "crlhf.crowd_views"},
    "crlhf.loop": {"check_programs": "crlhf.reward_inputs", "crowd_posteriors": "crlhf.reward_inputs",
                   "crowd_scores": "crlhf.reward_inputs", "checked_tasks": "crlhf.reward_inputs",
                   "METRIC_COLUMNS": "crlhf.loop_folder", "LABEL_LOG_COLUMNS": "crlhf.loop_folder",
                   "PROGRAM_COLUMNS": "crlhf.loop_folder", "CheckedProgram": "crlhf.reward",
                   "scored_lines": "crlhf.reward", "line_share": "crlhf.reward"},
    "crlhf.eval_run": {**{name: "crlhf.eval_samples" for name in (
        "SAMPLE_FIELDS", "samples_path", "read_samples", "derive_seed", "Block", "plan_blocks", "sample_block",
        "check_block", "append_rows", "results_of")}, "table_one": "crlhf.eval_summary",
        "summarize_run": "crlhf.eval_summary"},
    "crlhf.train_cmd": {name: "crlhf.train_config" for name in (
        "ConfigError", "ModelSettings", "SFTSettings", "PromptSettings", "LoraSettings", "TrainConfig", "parse_config",
        "load_config", "PROMPT_SETS", "DEFAULT_MINICODE_PROMPTS", "SECTION_TYPES", "TOP_KEYS", "SET_ELSEWHERE")},
    "crlhf.store": {"TemporaryPostgres": "crlhf.testing", "find_postgres_bindir": "crlhf.testing"},
}
CASES = [(old, name, home) for old, names in MOVED.items() for name, home in sorted(names.items())]


@pytest.mark.parametrize("old, name, home", CASES, ids=[f"{o}.{n}" for o, n, _ in CASES])
def test_a_moved_name_still_imports_from_its_old_module_with_a_warning(old, name, home):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old}.{name} moved to {home}; import it from there")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)
    assert name not in module.__all__


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_unknown_name_is_still_an_error(old):
    module = importlib.import_module(old)
    with pytest.raises(AttributeError, match=f"module '{re.escape(old)}' has no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_from_import_of_a_moved_name_warns_and_an_unknown_name_fails():
    with pytest.warns(DeprecationWarning, match="crlhf.replay"):
        from crlhf.crowd import replay_log
    from crlhf.replay import replay_log as new

    assert replay_log is new
    with pytest.raises(ImportError, match="nope"):
        from crlhf.crowd import nope  # noqa: F401


@renamed_fields({"old": "new"})
@dataclass
class Settings:
    new: int = 1
    other: str = "x"


def test_a_renamed_field_reads_writes_and_constructs_under_its_old_name():
    with pytest.warns(DeprecationWarning, match=r"Settings\.old is now Settings\.new"):
        s = Settings(old=5, other="y")
    assert (s.new, s.other) == (5, "y")
    with pytest.warns(DeprecationWarning):
        s.old = 7
    with pytest.warns(DeprecationWarning):
        assert s.old == 7 == s.new
    assert Settings(3).new == 3  # positional arguments are untouched
    with pytest.raises(TypeError, match="pass 'new' only"):
        Settings(old=1, new=2)


def test_renamed_keys_moves_old_keys_and_refuses_both():
    with pytest.warns(FutureWarning, match=r"f\.toml: \[ppo\]: 'lam' is now 'gae_lambda'"):
        out = renamed_keys({"lam": 0.5, "gamma": 1.0}, {"lam": "gae_lambda"}, "f.toml: [ppo]", FutureWarning)
    assert out == {"gae_lambda": 0.5, "gamma": 1.0}
    assert renamed_keys({"gamma": 1.0}, {"lam": "gae_lambda"}, "x") == {"gamma": 1.0}
    with pytest.raises(ValueError, match="'lam' and 'gae_lambda' both given"):
        renamed_keys({"lam": 0.5, "gae_lambda": 0.5}, {"lam": "gae_lambda"}, "x")
