"""crlhf sft: data loading and refusals, and a short real TRL run on a tiny random GPT-2."""

import json
import random
import string

import pytest

from crlhf.cli import main
from crlhf.sft import load_pairs
from crlhf.tasks import TaskFormatError, load_tasks

TOKENS = "def f ( a ) : NEW_LINE INDENT return a + 1 NEW_LINE DEDENT"


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_load_pairs_formats(tmp_path):
    plain = write_jsonl(tmp_path / "pairs.jsonl", [
        {"text": "Add one to  a", "code": "def f(a):\n    return a + 1\n"},
        {"text": "Tokenized", "code": TOKENS},
    ])
    pairs = load_pairs(plain)
    assert pairs[0] == {"prompt": "# Add one to a\n", "completion": "def f(a):\n    return a + 1\n"}
    assert pairs[1]["completion"] == "def f ( a ) :\n    return a + 1\n"
    assert len(load_pairs(plain, limit=1)) == 1
    folder = tmp_path / "xlcost" / "Python-desc"
    folder.mkdir(parents=True)
    (folder / "train-Python-desc-tok.txt").write_text("Add one\n")
    (folder / "train-Python-desc-tok.py").write_text(TOKENS + "\n")
    assert load_pairs(tmp_path / "xlcost") == [{"prompt": "# Add one\n",
                                                "completion": "def f ( a ) :\n    return a + 1\n"}]


@pytest.mark.parametrize("content, match", [
    ("", r"empty\.jsonl: empty"),
    ("\n  \n", r"empty\.jsonl: empty"),
    ('{"text": "a", "code": "x = 1"}\n{"text": "b", "code": \n', r"empty\.jsonl, line 2: invalid JSON"),
    ('{"text": "a", "code": "x = 1"}\n{"text": "b"}\n', r"line 2: field 'code': missing"),
    ('{"text": "a", "code": 3}\n', r"line 1: field 'code': expected str"),
    ('{"text": " ", "code": "x = 1"}\n', r"line 1: field 'text': empty"),
    ('[1, 2]\n', r"line 1: expected a JSON object"),
])
def test_malformed_or_empty_data_is_refused(tmp_path, content, match):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(TaskFormatError, match=match):
        load_pairs(path)


def test_bad_settings_are_refused_before_anything_loads(tmp_path):
    from crlhf.sft import sft

    for bad in ({"lr": 0}, {"epochs": -1}, {"batch_size": 0}, {"max_steps": 0}, {"lr": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sft("no-such-model", tmp_path / "missing.jsonl", tmp_path / "out", **bad)


def test_cli_refuses_bad_data_before_loading_a_model(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a", "code": "x = 1"}, '{"text": 5, "code": "y"}'])
    with pytest.raises(SystemExit) as exit_info:
        main(["sft", "--model", str(tmp_path / "nowhere"), "--data", str(bad)])
    assert exit_info.value.code == 2
    assert "bad.jsonl, line 2: field 'text': expected str" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sft", "--model", "x", "--data", str(tmp_path / "missing.jsonl")])
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer GPT-2 and a 300-token BPE trained on minicode, saved to a folder."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    text = [t.prompt + t.reference for t in load_tasks("minicode", split="train", n=150, seed=0)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(text, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=48, n_layer=2, n_head=2,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def completion_nll(policy, pairs):
    """Mean negative log-likelihood per code token (code + eos) given the prompt."""
    tok = policy.tokenizer
    prompts = [tok(p["prompt"])["input_ids"] for p in pairs]
    codes = [tok(p["prompt"] + p["completion"])["input_ids"][len(q):] + [tok.eos_token_id]
             for p, q in zip(pairs, prompts, strict=True)]
    lps = policy.logprobs(prompts, codes)
    return -float(sum(lp.sum() for lp in lps) / sum(len(lp) for lp in lps))


def test_sft_lowers_the_code_loss_and_saves_a_loadable_model(tiny_model_dir, tmp_path):
    import torch

    from crlhf.policy import Policy

    torch.set_num_threads(1)
    # learnable code under unlearnable prompts (random letters): a loss on the code only stays
    # far below the prompt's, a loss over whole sequences would not
    rng = random.Random(0)
    programs = [t.prompt + t.reference for t in load_tasks("minicode", split="train", n=1, seed=1)]
    data = write_jsonl(tmp_path / "train.jsonl", [
        {"text": " ".join("".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(6)),
         "code": programs[0]} for i in range(24)])
    pairs = load_pairs(data)
    before = completion_nll(Policy.from_pretrained(tiny_model_dir, device="cpu"), pairs)

    assert main(["sft", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "out"),
                 "--max-steps", "30", "--lr", "1e-2", "--batch-size", "8", "--logging-steps", "5",
                 "--device", "cpu", "--eval-data", str(data), "--no-activation-checkpointing"]) == 0
    result = json.loads((tmp_path / "out" / "sft_result.json").read_text())
    assert result["steps"] == 30 and result["examples"] == 24
    losses = result["losses"]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses

    tuned = Policy.from_pretrained(tmp_path / "out", device="cpu")
    after = completion_nll(tuned, pairs)
    assert after < 0.8 * before, (before, after)
    # TRL's loss is on the code (and eos) only: it matches the completion NLL computed here
    assert result["eval_loss"] is not None and abs(result["eval_loss"] - after) < 0.05 * after
    prompt_ids = [tuned.tokenizer(p["prompt"])["input_ids"] for p in pairs]
    prompt_lps = tuned.logprobs([q[:1] for q in prompt_ids], [q[1:] for q in prompt_ids])
    prompt_nll = -float(sum(lp.sum() for lp in prompt_lps) / sum(len(lp) for lp in prompt_lps))
    assert after < 0.5 * prompt_nll, (after, prompt_nll)
    print(f"code NLL {before:.3f} -> {after:.3f}, eval loss {result['eval_loss']:.3f}, prompt NLL {prompt_nll:.3f}")
    [[c]] = tuned.sample([pairs[0]["prompt"]], n=1, temperature=0, max_new_tokens=16, stop=(), progress=False)
    assert c.token_ids.numel() > 0
