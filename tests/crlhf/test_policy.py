"""Policy: tiny random models of the paper's four families, sampled offline on CPU."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from crlhf.policy import PAPER_MODELS, Completion, ModelUnavailableError, Policy  # noqa: E402
from crlhf.tasks import load_tasks  # noqa: E402

torch.set_num_threads(1)
EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer():
    """A 300-token byte-level BPE trained on minicode, without a pad token (Policy sets one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = [t.prompt + t.reference for t in load_tasks("minicode", split="train", n=150, seed=0)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(text, trainers.BpeTrainer(
        vocab_size=300, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)


def make_model(family, vocab, eos_id):
    t = transformers
    common = dict(vocab_size=vocab, bos_token_id=eos_id, eos_token_id=eos_id)
    if family == "gpt2":
        model = t.GPT2LMHeadModel(t.GPT2Config(n_positions=128, n_embd=32, n_layer=2, n_head=2, **common))
    elif family == "gpt_neo":
        model = t.GPTNeoForCausalLM(t.GPTNeoConfig(max_position_embeddings=128, hidden_size=32, num_layers=2,
                                                   num_heads=2, attention_types=[[["global", "local"], 1]],
                                                   window_size=8, **common))
    elif family == "gpt_neox":
        model = t.GPTNeoXForCausalLM(t.GPTNeoXConfig(max_position_embeddings=128, hidden_size=32,
                                                     num_hidden_layers=2, num_attention_heads=2,
                                                     intermediate_size=64, **common))
    elif family == "codegen":
        model = t.CodeGenForCausalLM(t.CodeGenConfig(n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                                     rotary_dim=8, **common))
    else:
        raise ValueError(family)
    return model


def make_policy(tokenizer, family="gpt2", seed=0):
    torch.manual_seed(seed)
    return Policy(make_model(family, len(tokenizer), tokenizer.eos_token_id), tokenizer)


PROMPTS = ['def count_even(xs):\n    """Count the even numbers in xs."""\n', "def f(x):\n", "x = "]
FAMILIES = ["gpt2", "gpt_neo", "gpt_neox", "codegen"]


def text_of(tokenizer, ids):
    """What the tokens say, by the tokenizer itself (not Policy's private decoder): special tokens
    dropped, spacing as sampled."""
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def fresh_logprobs(model, prompt_ids, token_ids, temperature):
    """log_softmax(logits / T) at the response tokens, from one unpadded forward pass."""
    ids = torch.cat([prompt_ids, token_ids]).unsqueeze(0)
    model.eval()  # models built from a config start in training mode (dropout)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    p = len(prompt_ids)
    lp = torch.log_softmax(logits[p - 1:-1] / temperature, dim=-1)
    return lp.gather(1, token_ids.unsqueeze(1)).squeeze(1)


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_shapes_logprobs_and_seed(tokenizer, family):
    policy = make_policy(tokenizer, family)
    assert policy.tokenizer.padding_side == "left" and policy.tokenizer.pad_token == EOS
    rng = torch.random.get_rng_state()
    out = policy.sample(PROMPTS, n=3, temperature=0.7, max_new_tokens=20, stop=(), seed=1, progress=False)
    assert torch.equal(rng, torch.random.get_rng_state()), "a seeded call must not move the global RNG"
    assert len(out) == len(PROMPTS) and all(len(row) == 3 for row in out)
    for prompt, row in zip(PROMPTS, out, strict=True):
        for c in row:
            assert isinstance(c, Completion)
            assert c.prompt_ids.tolist() == tokenizer(prompt)["input_ids"]
            assert c.token_ids.dtype == torch.long and c.token_ids.dim() == 1
            assert c.logprobs.shape == c.token_ids.shape
            assert bool((c.logprobs <= 0).all()) and bool(torch.isfinite(c.logprobs).all())
            assert text_of(tokenizer, c.token_ids.tolist()).startswith(c.text)
            if not c.finished:
                assert len(c.token_ids) == 20
            # the sampling distribution, recomputed without padding or KV cache
            ref = fresh_logprobs(policy.model, c.prompt_ids, c.token_ids, 0.7)
            torch.testing.assert_close(c.logprobs, ref, atol=1e-4, rtol=0)
    again = policy.sample(PROMPTS, n=3, temperature=0.7, max_new_tokens=20, stop=(), seed=1, progress=False)
    assert [[c.token_ids.tolist() for c in r] for r in again] == [[c.token_ids.tolist() for c in r] for r in out]
    other = policy.sample(PROMPTS, n=3, temperature=0.7, max_new_tokens=20, stop=(), seed=2, progress=False)
    assert [[c.text for c in r] for r in other] != [[c.text for c in r] for r in out]
    # the scoring helper agrees with the recorded log-probs
    flat = [c for r in out for c in r]
    scored = policy.logprobs([c.prompt_ids for c in flat], [c.token_ids for c in flat], temperature=0.7)
    for c, s in zip(flat, scored, strict=True):
        torch.testing.assert_close(c.logprobs, s, atol=1e-4, rtol=0)


def test_greedy_is_argmax_and_ignores_checkpoint_generation_defaults(tokenizer):
    policy = make_policy(tokenizer, "gpt2")
    # defaults a checkpoint may ship; sampling must not apply them
    policy.model.generation_config.repetition_penalty = 5.0
    policy.model.generation_config.top_k = 1
    out = policy.sample(PROMPTS[:2], n=2, temperature=0.0, max_new_tokens=12, stop=(), progress=False)
    for row in out:
        assert row[0].token_ids.tolist() == row[1].token_ids.tolist()
        c = row[0]
        ids = torch.cat([c.prompt_ids, c.token_ids]).unsqueeze(0)
        policy.model.eval()
        with torch.no_grad():
            logits = policy.model(input_ids=ids).logits[0, len(c.prompt_ids) - 1:-1]
        assert logits.argmax(-1).tolist() == c.token_ids.tolist()
        torch.testing.assert_close(c.logprobs, fresh_logprobs(policy.model, c.prompt_ids, c.token_ids, 1.0),
                                   atol=1e-4, rtol=0)
    assert policy.model.generation_config.repetition_penalty == 5.0, "the checkpoint's config is restored"
    sampled = policy.sample(PROMPTS[:1], n=6, temperature=1.0, max_new_tokens=12, stop=(), seed=0, progress=False)
    assert len({c.text for c in sampled[0]}) > 1, "top_k=1 from the checkpoint leaked into sampling"


def test_stop_truncation_in_generation(tokenizer, monkeypatch):
    policy = make_policy(tokenizer, "codegen")
    stop = ("e", "a", "o", "i", "\n")
    lengths = []
    generate = policy.model.generate

    def spy(*args, **kwargs):
        seqs = generate(*args, **kwargs)
        lengths.append(seqs.shape[1] - kwargs["input_ids"].shape[1])
        return seqs

    monkeypatch.setattr(policy.model, "generate", spy)
    [[c]] = policy.sample(["x = "], n=1, temperature=1.0, max_new_tokens=60, stop=stop, seed=3, progress=False)
    assert c.finished and not any(s in c.text for s in stop)
    decoded = text_of(tokenizer, c.token_ids.tolist())
    assert decoded.startswith(c.text) and any(s in decoded[len(c.text):] for s in stop)
    # the kept tokens end with the first one that decodes past the cut
    assert len(text_of(tokenizer, c.token_ids[:-1].tolist())) <= len(c.text)
    assert lengths == [len(c.token_ids)], "generation must stop at the token that completes the stop sequence"
    # with several rows, each is cut at its own first stop
    rows = policy.sample(PROMPTS, n=4, temperature=1.0, max_new_tokens=60, stop=stop, seed=4, progress=False)
    for c in (c for r in rows for c in r):
        assert not any(s in c.text for s in stop)
        assert text_of(tokenizer, c.token_ids.tolist()).startswith(c.text)


def test_finish_token_boundary(tokenizer):
    policy = make_policy(tokenizer, "gpt2")
    eos = tokenizer.eos_token_id
    prompt = tokenizer("def f(x):\n")["input_ids"]
    gen = tokenizer("    return x\n\n\ndef g():\n    pass\n")["input_ids"]
    lp = -torch.arange(1, len(gen) + 3, dtype=torch.float32)
    c = policy._finish(prompt, gen + [eos, eos], lp, ("\ndef", "\nclass"), [eos])
    assert c.text == "    return x\n\n" and c.finished
    kept = text_of(tokenizer, c.token_ids.tolist())
    assert kept.startswith(c.text) and len(kept) > len(c.text) and "\ndef" not in kept
    assert len(text_of(tokenizer, c.token_ids[:-1].tolist())) <= len(c.text)
    assert c.logprobs.tolist() == lp[:len(c.token_ids)].tolist()
    # end of sequence without a stop: the eos token is kept, the text is everything before it
    body = tokenizer("    return x + 1")["input_ids"]
    c = policy._finish(prompt, body + [eos, eos], lp, ("\ndef",), [eos])
    assert c.finished and c.text == "    return x + 1" and c.token_ids.tolist() == body + [eos]
    # length limit: not finished, everything kept
    c = policy._finish(prompt, body, lp, ("\ndef",), [eos])
    assert not c.finished and c.token_ids.tolist() == body
    # a stop at the very start keeps the sampled token that began it, as EOS is kept
    gen = tokenizer("\ndef h():")["input_ids"]
    c = policy._finish(prompt, gen, lp, ("\ndef",), [eos])
    assert c.text == "" and c.finished and c.token_ids.tolist() == gen[:1]
    assert c.logprobs.tolist() == lp[:1].tolist()


def test_eos_ends_a_row(tokenizer):
    policy = make_policy(tokenizer, "gpt2")
    eos = tokenizer.eos_token_id
    bonus = torch.zeros(len(tokenizer))
    bonus[eos] = 30.0  # eos becomes by far the likeliest token
    policy.model.lm_head.register_forward_hook(lambda module, args, logits: logits + bonus)
    out = policy.sample(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=0, progress=False)
    for c in (c for r in out for c in r):
        assert c.finished and c.text == "" and c.token_ids.tolist() == [eos]
        assert c.logprobs.shape == (1,) and c.logprobs.item() > -1e-3


def test_batching_order_and_oom_halving(tokenizer, monkeypatch):
    policy = make_policy(tokenizer, "gpt_neox")
    whole = policy.sample(PROMPTS, n=2, temperature=0.0, max_new_tokens=8, stop=(), progress=False)
    batch_sizes = []
    real = policy._generate_batch

    def flaky(prompt_ids, *args):
        batch_sizes.append(len(prompt_ids))
        if len(prompt_ids) > 2:
            raise torch.OutOfMemoryError("simulated")
        return real(prompt_ids, *args)

    monkeypatch.setattr(policy, "_generate_batch", flaky)
    split = policy.sample(PROMPTS, n=2, temperature=0.0, max_new_tokens=8, stop=(), batch_size=5, progress=False)
    assert batch_sizes[:2] == [5, 2] and max(batch_sizes[1:]) == 2
    assert [[c.token_ids.tolist() for c in r] for r in split] == [[c.token_ids.tolist() for c in r] for r in whole]
    for prompt, row in zip(PROMPTS, split, strict=True):
        assert all(c.prompt_ids.tolist() == tokenizer(prompt)["input_ids"] for c in row)


def test_save_load_round_trip(tokenizer, tmp_path):
    policy = make_policy(tokenizer, "codegen")
    before = policy.sample(PROMPTS, n=1, temperature=0, max_new_tokens=12, stop=(), progress=False)
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = Policy.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert loaded.device.type == "cpu" and loaded.model.dtype == torch.float32
    assert loaded.tokenizer.padding_side == "left"
    after = loaded.sample(PROMPTS, n=1, temperature=0, max_new_tokens=12, stop=(), progress=False)
    assert [r[0].token_ids.tolist() for r in after] == [r[0].token_ids.tolist() for r in before]
    assert [r[0].text for r in after] == [r[0].text for r in before]
    half = Policy.from_pretrained(str(tmp_path / "ckpt"), device="cpu", dtype="bfloat16")
    assert half.model.dtype == torch.bfloat16


def test_as_sampler(tokenizer):
    policy = make_policy(tokenizer, "gpt_neo")
    sampler = policy.as_sampler(max_new_tokens=16, seed=5, progress=False)
    texts = sampler(PROMPTS, 2, 0.8)
    direct = policy.sample(PROMPTS, n=2, temperature=0.8, max_new_tokens=16, seed=5, progress=False)
    assert texts == [[c.text for c in r] for r in direct]
    assert all(isinstance(t, str) for r in texts for t in r)


def test_bad_arguments(tokenizer):
    policy = make_policy(tokenizer, "gpt2")
    with pytest.raises(TypeError, match="list of str"):
        policy.sample("def f():", n=1)
    with pytest.raises(ValueError, match="n must be"):
        policy.sample(PROMPTS, n=0)
    with pytest.raises(ValueError, match="temperature"):
        policy.sample(PROMPTS, temperature=-1)
    with pytest.raises(ValueError, match="exceeds the model's 128 positions"):
        policy.sample(["x = 1\n" * 40], max_new_tokens=100)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        policy.logprobs([[1], [2]], [[3]])


def test_paper_models_and_offline_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    assert len(PAPER_MODELS) == 8
    assert {m.family for m in PAPER_MODELS.values()} == {"gpt2", "gpt_neo", "gpt_neox", "codegen"}
    assert {"codeparrot/codeparrot-small", "Salesforce/codegen-350M-multi", "NinedayWang/PolyCoder-2.7B",
            "EleutherAI/gpt-neo-1.3B"} <= set(PAPER_MODELS)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match=r"CodeParrot 110M \(codeparrot/codeparrot-small\).*download"):
        Policy.from_pretrained("codeparrot/codeparrot-small", device="cpu")
    with pytest.raises(FileNotFoundError, match="no model folder"):
        Policy.from_pretrained(str(tmp_path / "missing"), device="cpu")


def test_sampling_one_prompt_many_times_raises_no_attention_mask_warning():
    """Rows of one prompt are unpadded, so generate() drops the mask we pass and then warns about
    the pad tokens it appends to finished rows; that false alarm must not reach the user."""
    import logging

    from transformers.utils import logging as hf_logging

    from crlhf import tiny

    messages = []

    class Record(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Record()
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addHandler(handler)
    hf_logging.warning_once.cache_clear()  # transformers warns once per process
    try:
        policy = tiny.load(device="cpu")
        rows = policy.sample(["def add(a, b):\n"], n=8, temperature=1.0, max_new_tokens=48, seed=0, batch_size=8,
                             progress=False)[0]
        logger.warning("another warning still gets through")
    finally:
        logger.removeHandler(handler)
    assert len({len(c.token_ids) for c in rows}) > 1  # rows finished at different steps: padding was fed
    assert messages == ["another warning still gets through"]


def test_saving_shows_no_transformers_progress_bar_and_restores_the_setting(tokenizer, tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    from crlhf.policy import hf_progress_bars_off

    policy = make_policy(tokenizer, "gpt2")
    assert hf_logging.is_progress_bar_enabled()
    policy.save_pretrained(tmp_path / "ckpt")
    assert "Writing model shards" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # other saves and downloads keep their bars
    with pytest.raises(RuntimeError), hf_progress_bars_off():
        assert not hf_logging.is_progress_bar_enabled()
        raise RuntimeError("a failed save")
    assert hf_logging.is_progress_bar_enabled()
    policy.model.save_pretrained(tmp_path / "plain")  # what the switch hides
    assert "Writing model shards" in capfd.readouterr().err
