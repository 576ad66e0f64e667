"""The embedded tiny coder: packaged checkpoint, tokenizer, behaviour, and a short training run."""

import json
import time

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from crlhf import cli, tiny  # noqa: E402
from crlhf.policy import Policy  # noqa: E402
from crlhf.sandbox import check_many  # noqa: E402
from crlhf.tasks import load_tasks  # noqa: E402

torch.set_num_threads(1)
CODE = 'def f(x):\n\tif x:\n        return  "a  b"\n\n\n   \n  y = [1,\t2]  \r\n# é ü 中 ✓\n'


@pytest.fixture(scope="module")
def policy():
    return tiny.load(device="cpu")


def test_packaged_checkpoint_is_small_and_complete():
    files = {p.name: p.stat().st_size for p in tiny.MODEL_DIR.iterdir() if p.is_file()}
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert name in files, f"{name} missing from {tiny.MODEL_DIR}"
    assert sum(files.values()) <= 10 * 2**20
    config = json.loads((tiny.MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "gpt2"
    info = json.loads((tiny.MODEL_DIR / "recipe.json").read_text())
    assert info["recipe"] == {**vars(tiny.Recipe())}, "the packaged checkpoint was not trained with the default recipe"
    assert info["max_steps"] is None


@pytest.mark.perf
def test_load_takes_under_two_seconds():
    # One-time library imports (torch, transformers' GPT-2 and tokenizer modules) are not the
    # checkpoint's cost; any use of the kit pays them once.
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel  # noqa: F401

    start = time.perf_counter()
    tiny.load(device="cpu")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"tiny.load() took {elapsed:.2f} s"


def test_load_returns_a_ready_policy():
    policy = tiny.load(device="cpu")
    assert isinstance(policy, Policy)
    n_params = sum(p.numel() for p in policy.model.parameters())
    assert 2e5 < n_params < 5e6
    assert policy.tokenizer.padding_side == "left"
    assert policy.tokenizer.pad_token_id != policy.tokenizer.eos_token_id


def test_load_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="crlhf tiny train"):
        tiny.load(tmp_path)


def test_tokenizer_round_trips_whitespace_and_prompts_are_token_prefixes(policy):
    tok = policy.tokenizer
    assert tok.decode(tok(CODE).input_ids) == CODE
    for task in load_tasks("minicode", split="test", n=30, seed=3):
        for text in (task.prompt, task.prompt + task.reference):
            assert tok.decode(tok(text).input_ids) == text
        prompt_ids = tok(task.prompt).input_ids
        # SFT trains on prompt + completion; sampling starts from the prompt alone
        assert tok(task.prompt + task.reference).input_ids[:len(prompt_ids)] == prompt_ids
    indent = tok("    x = 1\n        y = 2\n").input_ids
    assert len(indent) < len("    x = 1\n        y = 2\n") // 2  # indentation is merged, not byte by byte


def test_greedy_completions_of_train_prompts_pass_in_the_sandbox(policy):
    tasks = load_tasks("minicode", split="train", n=16, seed=0)
    out = policy.sample([t.prompt for t in tasks], n=1, temperature=0, max_new_tokens=96, seed=0,
                        batch_size=16, progress=False)
    completions = [row[0].text for row in out]
    assert all(row[0].finished for row in out)
    results = check_many([t.check_item(t.truncate(c)) for t, c in zip(tasks, completions, strict=True)], progress=False)
    passed = sum(r.passed for r in results)
    assert passed >= 8, f"only {passed}/16 greedy completions of train prompts pass"
    # an untrained model of the same shape passes none: the behaviour comes from the weights
    torch.manual_seed(0)
    random = Policy(transformers.GPT2LMHeadModel(policy.model.config).eval(), policy.tokenizer, device="cpu")
    noise = random.sample([t.prompt for t in tasks[:4]], n=1, temperature=0, max_new_tokens=24, seed=0,
                          progress=False)
    noise_results = check_many([t.check_item(t.truncate(r[0].text)) for t, r in zip(tasks[:4], noise, strict=True)],
                               progress=False)
    assert not any(r.passed for r in noise_results)


def test_recipe_rejects_bad_fields():
    with pytest.raises(ValueError, match="n_embd"):
        tiny.Recipe(n_embd=130, n_head=4)
    with pytest.raises(ValueError, match="vocab_size"):
        tiny.Recipe(vocab_size=100)
    with pytest.raises(TypeError, match="epochs"):
        tiny.Recipe(epochs="2")
    with pytest.raises(ValueError, match="max_steps"):
        tiny.train("unused", max_steps=0)


def test_short_training_run_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "tiny"
    assert cli.main(["tiny", "train", "--out", str(out), "--n-tasks", "48", "--vocab-size", "320", "--n-layer",
                     "1", "--n-embd", "32", "--n-head", "2", "--n-positions", "160", "--batch-size", "8",
                     "--max-steps", "4", "--quiet"]) == 0
    info = json.loads((out / "recipe.json").read_text())
    assert info["steps"] == 4 and info["recipe"]["n_tasks"] == 48
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    small = tiny.load(out, device="cpu")
    assert len(small.tokenizer) == 320 and small.model.config.n_embd == 32
    assert small.tokenizer.decode(small.tokenizer(CODE).input_ids) == CODE
    rows = small.sample(["def f(xs):\n"], n=2, temperature=0.8, max_new_tokens=8, seed=0, progress=False)
    assert len(rows[0]) == 2 and all(isinstance(c.text, str) for c in rows[0])
