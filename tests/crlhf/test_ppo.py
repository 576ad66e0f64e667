"""Tests of crlhf.ppo: the loss terms against a hand computation, learning on a toy problem,
the frozen reference, the KL controller, padding invariance, accumulation, saving.

Every expected value is computed here, step by step, from the model's own logits and hidden
states, without ppo.py's helpers. Tiny random GPT-2 models keep the file fast on 2 cores.
"""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crlhf.ppo import AdaptiveKLController, FixedKLController, PPOConfig, PPOTrainer  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_gpt2(seed=0, vocab=32, n_embd=16, device="cpu", dropout=0.0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=64, n_embd=n_embd, n_layer=2, n_head=2,
                                  resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).to(device)


def perturb(module, scale, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p.device))


def seq_terms(model, value_head, q, r, temperature):
    """Log-probs (at temperature), entropies and values of response r after query q, computed
    on the unpadded sequence alone."""
    device = next(model.parameters()).device
    out = model(torch.tensor([q + r], device=device), output_hidden_states=True)
    pos = slice(len(q) - 1, len(q) + len(r) - 1)  # the positions that predict r
    logp_all = torch.log_softmax(out.logits[0, pos].float() / temperature, dim=-1)
    logp = logp_all[torch.arange(len(r)), torch.tensor(r)]
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    values = None
    if value_head is not None:
        h = out.hidden_states[-1][0, pos]
        values = h @ value_head.summary.weight[0] + value_head.summary.bias[0]
    return logp, entropy, values


QUERIES = [[3, 7, 1], [5, 2, 9, 4, 8]]  # different lengths: the first is left-padded
RESPONSES = [[10, 11, 12, 13], [14, 15]]  # different lengths: the second is right-padded
SCORES = [1.0, -0.5]


def test_ppo_formulas_on_numbers_worked_by_hand():
    """Ziegler's KL-penalised rewards, GAE, whitening and both clipped losses on a batch of two
    (3 tokens, and 2 plus one padding token whose junk values must not leak), every expected value
    worked out in the comments; GAE also against its closed form sum_l (gamma lam)^l delta_{t+l}."""
    from crlhf.ppo import clipped_policy_loss, clipped_value_loss, gae_advantages, kl_penalized_rewards, masked_whiten

    f64 = torch.float64
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-1.5, -0.3, -4.0]], dtype=f64)
    ref = torch.tensor([[-1.2, -1.5, -0.5], [-1.0, -0.3, 0.0]], dtype=f64)
    u = torch.tensor([[0.0, 0.25, 0.0], [0.1, 0.0, 9.0]], dtype=f64)
    rewards, kl = kl_penalized_rewards(logp, ref, torch.tensor([1.0, -0.5], dtype=f64), mask, 0.5, u)
    # kl = logp - ref = [.2, -.5, 0], [-.5, 0, pad]; r = -0.5 kl + u, plus s at the last real token:
    # row 0: [-.1, .25 + .25, 0 + 1] ; row 1: [.25 + .1, 0 - .5, pad]
    torch.testing.assert_close(kl, torch.tensor([[0.2, -0.5, 0.0], [-0.5, 0.0, 0.0]], dtype=f64))
    torch.testing.assert_close(rewards, torch.tensor([[-0.1, 0.5, 1.0], [0.35, -0.5, 0.0]], dtype=f64))

    values = torch.tensor([[0.5, 0.2, 0.1], [0.3, -0.2, 7.0]], dtype=f64)
    adv, ret = gae_advantages(rewards, values, mask, gamma=0.9, gae_lambda=0.8)  # gamma * lam = 0.72
    # row 0: delta_2 = 1 - .1 = .9; delta_1 = .5 + .9 * .1 - .2 = .39; delta_0 = -.1 + .9 * .2 - .5 = -.42
    #   A_2 = .9, A_1 = .39 + .72 * .9 = 1.038, A_0 = -.42 + .72 * 1.038 = .32736
    # row 1 (V = 0 after the last real token, not the padding's 7): delta_1 = -.5 + .2 = -.3,
    #   delta_0 = .35 + .9 * -.2 - .3 = -.13; A_1 = -.3, A_0 = -.13 + .72 * -.3 = -.346
    want = torch.tensor([[0.32736, 1.038, 0.9], [-0.346, -0.3, 0.0]], dtype=f64)
    torch.testing.assert_close(adv, want)
    torch.testing.assert_close(ret, torch.where(mask.bool(), want + values, torch.zeros((), dtype=f64)))

    # the closed form on a random ragged batch: no recursion, one discount matrix per row
    g = torch.Generator().manual_seed(0)
    lengths = [6, 1, 4]
    m = torch.tensor([[1] * n + [0] * (6 - n) for n in lengths])
    r, v = torch.randn(3, 6, generator=g, dtype=f64), torch.randn(3, 6, generator=g, dtype=f64)
    got, _ = gae_advantages(r, v, m, gamma=0.95, gae_lambda=0.7)
    for i, n in enumerate(lengths):
        v_next = torch.cat([v[i, 1:n], torch.zeros(1, dtype=f64)])
        delta = r[i, :n] + 0.95 * v_next - v[i, :n]
        lag = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # l = t' - t
        discount = torch.where(lag >= 0, (0.95 * 0.7) ** lag.clamp(min=0).to(f64), torch.zeros((), dtype=f64))
        torch.testing.assert_close(got[i, :n], discount @ delta)
        assert (got[i, n:] == 0).all()

    # whitening over the valid entries 1, 3, 5, 7: mean 4, population variance (9 + 1 + 1 + 9) / 4 = 5
    x = torch.tensor([[1.0, 3.0, 5.0], [7.0, 100.0, -100.0]], dtype=f64)
    wm = torch.tensor([[1, 1, 1], [1, 0, 0]])
    torch.testing.assert_close(masked_whiten(x, wm), torch.tensor([[-3.0, -1.0, 1.0], [3.0, 0.0, 0.0]], dtype=f64)
                               / np.sqrt(5 + 1e-8))
    torch.testing.assert_close(masked_whiten(x, wm, shift_mean=False)[0], torch.tensor([1.0, 3.0, 5.0], dtype=f64)
                               .sub(4).div(np.sqrt(5 + 1e-8)).add(4))

    # the clipped policy loss, eps = 0.2, ratios 1.5, 0.5, 1.1 | 0.5 (and junk on padding):
    #   A = 1, rho 1.5: max(-1.5, -1.2) = -1.2 (clipped); A = 1, rho .5: max(-.5, -.8) = -.5;
    #   A = -2, rho 1.1: max(2.2, 2.2) = 2.2; A = -1, rho .5: max(.5, .8) = .8 (clipped)
    #   loss = (-1.2 - .5 + 2.2 + .8) / 4 = .325, clipfrac = 2 / 4
    lm = torch.tensor([[1, 1, 1], [1, 0, 0]])
    rho = torch.tensor([[1.5, 0.5, 1.1], [0.5, 50.0, 0.01]], dtype=f64)
    old = torch.full((2, 3), -1.0, dtype=f64)
    a = torch.tensor([[1.0, 1.0, -2.0], [-1.0, 100.0, -100.0]], dtype=f64)
    out = clipped_policy_loss(old + torch.log(rho), old, a, lm, 0.2)
    assert out["loss"].item() == pytest.approx(0.325) and out["clipfrac"].item() == pytest.approx(0.5)
    logs = np.log([1.5, 0.5, 1.1, 0.5])
    assert out["approx_kl"].item() == pytest.approx(0.5 * np.mean(logs**2))
    assert out["ratio"].item() == pytest.approx((1.5 + 0.5 + 1.1 + 0.5) / 4)

    # the clipped value loss, eps_v = 0.2 (V, V_old, R):
    #   (1, .5, 0): V_clip .7, max(1, .49) = 1;  (0, .5, 1): V_clip .3, max(1, .49) = 1;
    #   (.6, .5, 2): unclipped, 1.96;  (1, .5, 1): V_clip .7, max(0, .09) = .09 (clipped)
    #   loss = 0.5 * (1 + 1 + 1.96 + .09) / 4 = .50625, clipfrac = 1 / 4
    vals = torch.tensor([[1.0, 0.0, 0.6], [1.0, 9.0, 9.0]], dtype=f64)
    old_v = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.0, 0.0]], dtype=f64)
    rets = torch.tensor([[0.0, 1.0, 2.0], [1.0, -9.0, -9.0]], dtype=f64)
    vout = clipped_value_loss(vals, old_v, rets, lm, 0.2)
    assert vout["loss"].item() == pytest.approx(0.50625) and vout["clipfrac"].item() == pytest.approx(0.25)


@pytest.mark.parametrize("device", DEVICES)
def test_loss_terms_equal_a_hand_computation(device):
    # The per-token formulas below are the textbook ones ppo.py also writes; what this test adds is the
    # batching, padding, positions and temperature (test_ppo_formulas_on_numbers_worked_by_hand pins the formulas).
    T, beta, gamma, lam = 0.7, 0.3, 0.9, 0.8
    cfg = PPOConfig(temperature=T, init_kl_coef=beta, gamma=gamma, gae_lambda=lam, mixed_precision="no")
    model = tiny_gpt2(0, device=device)
    trainer = PPOTrainer(model, None, cfg)
    perturb(model, 0.3, seed=1)  # the policy has moved away from the reference: KL != 0
    with torch.no_grad():
        trainer.value_head.summary.weight.normal_(0, 0.5)
        trainer.value_head.summary.bias.fill_(0.1)

    ro = trainer.rollout(QUERIES, RESPONSES, SCORES)
    atol = 1e-5 if device == "cpu" else 1e-4

    # --- rollout by hand: rewards, GAE, whitening
    old_logp, old_v, rewards, adv = [], [], [], []
    with torch.no_grad():
        for q, r, s in zip(QUERIES, RESPONSES, SCORES, strict=True):
            logp, _, v = seq_terms(model, trainer.value_head, q, r, T)
            ref_logp, _, _ = seq_terms(trainer.ref_model, None, q, r, T)
            rew = [-beta * (logp[t] - ref_logp[t]).item() for t in range(len(r))]
            rew[-1] += s  # the score at the last response token
            a, last = [0.0] * len(r), 0.0
            for t in reversed(range(len(r))):
                next_v = v[t + 1].item() if t + 1 < len(r) else 0.0
                delta = rew[t] + gamma * next_v - v[t].item()
                last = delta + gamma * lam * last
                a[t] = last
            old_logp.append(logp)
            old_v.append(v)
            rewards.append(torch.tensor(rew))
            adv.append(torch.tensor(a))
    returns = [a + v.cpu() for a, v in zip(adv, old_v, strict=True)]
    flat = torch.cat(adv)
    mean, var = flat.mean(), ((flat - flat.mean()) ** 2).mean()
    white = [(a - mean) / torch.sqrt(var + 1e-8) for a in adv]

    assert ro.mask.sum(1).tolist() == [4, 2]
    for i, r in enumerate(RESPONSES):
        n = len(r)
        torch.testing.assert_close(ro.logprobs[i, :n], old_logp[i], atol=atol, rtol=0)
        torch.testing.assert_close(ro.values[i, :n], old_v[i], atol=atol, rtol=0)
        torch.testing.assert_close(ro.rewards[i, :n].cpu(), rewards[i], atol=atol, rtol=0)
        torch.testing.assert_close(ro.returns[i, :n].cpu(), returns[i], atol=atol, rtol=0)
        torch.testing.assert_close(ro.advantages[i, :n].cpu(), white[i], atol=atol, rtol=0)
        assert (ro.advantages[i, n:] == 0).all() and (ro.returns[i, n:] == 0).all()
    assert rewards[0][:-1].abs().max() > 1e-4  # the KL penalty is not zero here

    # --- the update's losses by hand, after the policy and value head moved
    perturb(model, 0.05, seed=2)
    perturb(trainer.value_head, 0.2, seed=3)
    pg_terms, vf_terms, pg_clipped, v_clipped, ents = [], [], [], [], []
    with torch.no_grad():
        for i, (q, r) in enumerate(zip(QUERIES, RESPONSES, strict=True)):
            logp, ent, v = seq_terms(model, trainer.value_head, q, r, T)
            ratio = torch.exp(logp - old_logp[i]).cpu()
            A = white[i]
            unclipped, clipped = -A * ratio, -A * ratio.clamp(0.8, 1.2)
            pg_terms.append(torch.maximum(unclipped, clipped))
            pg_clipped.append(clipped > unclipped)
            v, ov = v.cpu(), old_v[i].cpu()
            vclip = ov + (v - ov).clamp(-0.2, 0.2)
            l1, l2 = (v - returns[i]) ** 2, (vclip - returns[i]) ** 2
            vf_terms.append(torch.maximum(l1, l2))
            v_clipped.append(l2 > l1)
            ents.append(ent.cpu())
    pg = torch.cat(pg_terms).mean()  # token mean over the 6 response tokens
    vf = 0.5 * torch.cat(vf_terms).mean()
    total = pg + 0.1 * vf
    clipfrac = torch.cat(pg_clipped).float().mean()
    vclipfrac = torch.cat(v_clipped).float().mean()
    # the example exercises both branches of both clips
    assert 0 < clipfrac < 1 and 0 < vclipfrac < 1, (clipfrac, vclipfrac)

    loss, stats = trainer.compute_loss(ro)
    assert abs(loss.item() - total.item()) < atol * 10
    assert abs(stats["policy_loss"].item() - pg.item()) < atol * 10
    assert abs(stats["value_loss"].item() - vf.item()) < atol * 10
    assert abs(stats["clipfrac"].item() - clipfrac.item()) < 1e-6
    assert abs(stats["value_clipfrac"].item() - vclipfrac.item()) < 1e-6
    assert abs(stats["entropy"].item() - torch.cat(ents).mean().item()) < atol * 10
    loss.backward()  # the loss reaches both the trunk and the value head
    assert model.transformer.wte.weight.grad.abs().sum() > 0
    assert trainer.value_head.summary.weight.grad.abs().sum() > 0


def test_token_rewards_and_advantage_weights_equal_a_hand_computation():
    """Per-token rewards u_t join r_t; weights w_t scale the whitened advantages where they are
    negative, and leave the returns (value targets) alone."""
    T, beta, gamma, lam = 0.9, 0.2, 1.0, 0.95
    cfg = PPOConfig(temperature=T, init_kl_coef=beta, gamma=gamma, gae_lambda=lam, mixed_precision="no")
    model = tiny_gpt2(4)
    trainer = PPOTrainer(model, None, cfg)
    perturb(model, 0.3, seed=5)
    with torch.no_grad():
        trainer.value_head.summary.weight.normal_(0, 0.5)
    u = [[0.0, 0.25, 0.0, 0.5], [0.1, 0.0]]
    w = [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0]]
    ro = trainer.rollout(QUERIES, RESPONSES, SCORES, token_rewards=u, advantage_weights=w)
    plain = trainer.rollout(QUERIES, RESPONSES, SCORES)
    adv, rets = [], []
    with torch.no_grad():
        for q, r, s, ui in zip(QUERIES, RESPONSES, SCORES, u, strict=True):
            logp, _, v = seq_terms(model, trainer.value_head, q, r, T)
            ref_logp, _, _ = seq_terms(trainer.ref_model, None, q, r, T)
            rew = [-beta * (logp[t] - ref_logp[t]).item() + ui[t] for t in range(len(r))]
            rew[-1] += s
            a, last = [0.0] * len(r), 0.0
            for t in reversed(range(len(r))):
                next_v = v[t + 1].item() if t + 1 < len(r) else 0.0
                last = rew[t] + gamma * next_v - v[t].item() + gamma * lam * last
                a[t] = last
            adv.append(torch.tensor(a))
            rets.append(torch.tensor(a) + v)
    flat = torch.cat(adv)
    white = [(a - flat.mean()) / torch.sqrt(((flat - flat.mean()) ** 2).mean() + 1e-8) for a in adv]
    weighted = [torch.where(a < 0, a * torch.tensor(wi), a) for a, wi in zip(white, w, strict=True)]
    for i, r in enumerate(RESPONSES):
        n = len(r)
        torch.testing.assert_close(ro.advantages[i, :n], weighted[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(ro.returns[i, :n], rets[i], atol=1e-5, rtol=0)
    assert (ro.rewards - plain.rewards)[0, :4].tolist() == pytest.approx(u[0], abs=1e-6)
    assert any((white[i] < 0).any() and (weighted[i] != white[i]).any() for i in range(2))  # weights bite
    assert any((white[i] > 0).any() for i in range(2))
    with pytest.raises(ValueError, match=r"token_rewards\[1\] has 3 values for 2 response tokens"):
        trainer.rollout(QUERIES, RESPONSES, SCORES, token_rewards=[u[0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"advantage_weights\[0\] must lie in \[0.0, 1.0\]"):
        trainer.rollout(QUERIES, RESPONSES, SCORES, advantage_weights=[[2.0, 0, 0, 0], [1, 1]])
    with pytest.raises(ValueError, match="token_rewards.*finite"):
        trainer.step(QUERIES, RESPONSES, SCORES, token_rewards=[[float("nan")] * 4, [0, 0]])
    stats = trainer.step(QUERIES, RESPONSES, SCORES, token_rewards=u, advantage_weights=w)
    assert math.isfinite(stats["loss"])


def sequence_logprob(model, q, r):
    with torch.no_grad():
        logp, _, _ = seq_terms(model, None, q, r, 1.0)
    return logp.sum().item()


def response_kl(model, ref, q, vocab=16, length=3):
    """Exact KL(pi || rho) between the policy's and the reference's distributions over all
    ``vocab ** length`` responses of ``length`` tokens after ``q`` (one batched forward each)."""
    device = next(model.parameters()).device
    ys = torch.tensor(list(itertools.product(range(vocab), repeat=length)), device=device)
    ids = torch.cat([torch.tensor(q, device=device).expand(len(ys), -1), ys], dim=1)
    with torch.no_grad():
        lp, lr = (torch.log_softmax(m(ids).logits[:, len(q) - 1:-1].float(), -1)
                  .gather(-1, ys.unsqueeze(-1)).squeeze(-1).sum(1) for m in (model, ref))
    return (lp.exp() * (lp - lr)).sum().item()


def toy_run(cfg, steps, device="cpu"):
    """A fixed query, two enumerated candidates: A (3 tokens) scores 1, B (1 token) scores 0."""
    model = tiny_gpt2(3, vocab=16, n_embd=32, device=device)
    trainer = PPOTrainer(model, None, cfg)
    q, A, B = [1, 2, 3], [4, 5, 6], [7]
    before = sequence_logprob(model, q, A), sequence_logprob(model, q, B)
    kls = []
    for k in range(steps):
        stats = trainer.step([q, q], [A, B], [1.0, 0.0])
        assert all(math.isfinite(v) for v in stats.values()), stats
        if k % 10 == 9:
            kls.append(response_kl(model, trainer.ref_model, q))
    after = sequence_logprob(model, q, A), sequence_logprob(model, q, B)
    return before, after, kls


@pytest.mark.parametrize("device", DEVICES)
def test_ppo_raises_the_rewarded_completion_with_bounded_kl(device):
    # a larger learning rate than Ziegler's 1e-5: a random 30k-parameter model, 30 steps
    cfg = PPOConfig(learning_rate=3e-3, mixed_precision="bf16" if device == "cuda" else "auto")
    (a0, b0), (a1, b1), kls = toy_run(cfg, 30, device)
    assert a1 - a0 > 1.0, (a0, a1)  # P(A) at least e times larger (seeds 0-3 gave 1.7-2.3 nats)
    assert b1 < b0 - 1.0, (b0, b1)
    assert max(kls) < 4.0, kls  # exact KL to the reference stays bounded (seeds 0-3: <= 2.6)
    # without the KL penalty the same run drifts much further (seeds 0-3: 6.5-7.8 nats)
    free = PPOConfig(learning_rate=3e-3, kl_control="fixed", init_kl_coef=0.0, mixed_precision=cfg.mixed_precision)
    _, _, kls_free = toy_run(free, 30, device)
    assert kls_free[-1] > 2 * kls[-1] and kls_free[-1] > 4.0, (kls_free, kls)


def test_reference_model_never_changes_bitwise():
    model = tiny_gpt2(4)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = PPOTrainer(model, None, PPOConfig(learning_rate=1e-2, ppo_epochs=2))
    assert trainer.ref_model is not model
    assert all(not p.requires_grad for p in trainer.ref_model.parameters())
    for _ in range(3):
        trainer.step(QUERIES, RESPONSES, SCORES)
    ref = trainer.ref_model.state_dict()
    assert ref.keys() == initial.keys()
    assert all(torch.equal(ref[k], initial[k]) for k in initial)
    policy = model.state_dict()
    assert any(not torch.equal(policy[k], initial[k]) for k in initial)  # the policy did move
    assert not trainer.ref_model.training

    # a reference passed in is used as it is, frozen
    ref_in = tiny_gpt2(5)
    frozen = {k: v.clone() for k, v in ref_in.state_dict().items()}
    trainer = PPOTrainer(tiny_gpt2(4), None, PPOConfig(learning_rate=1e-2, ppo_epochs=1), ref_model=ref_in)
    trainer.step(QUERIES, RESPONSES, SCORES)
    assert trainer.ref_model is ref_in
    assert all(torch.equal(ref_in.state_dict()[k], frozen[k]) for k in frozen)
    with pytest.raises(ValueError, match="ref_model"):
        PPOTrainer(ref_in, None, PPOConfig(), ref_model=ref_in)


def test_adaptive_kl_controller_moves_beta_by_the_right_amount():
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    assert ctl.update(7.2, 100) == pytest.approx(0.2 * (1 + 0.2 * 100 / 10000))  # KL/target - 1 = 0.2
    beta = ctl.value
    assert ctl.update(6.6, 50) == pytest.approx(beta * (1 + 0.1 * 50 / 10000))  # error 0.1, unclipped
    beta = ctl.value
    assert ctl.update(60.0, 100) == pytest.approx(beta * (1 + 0.2 * 100 / 10000))  # clipped at +0.2
    beta = ctl.value
    assert ctl.update(0.0, 100) == pytest.approx(beta * (1 - 0.2 * 100 / 10000))  # clipped at -0.2
    beta = ctl.value
    assert ctl.update(5.4, 1000) == pytest.approx(beta * (1 - 0.1 * 1000 / 10000))  # error -0.1
    fixed = FixedKLController(0.3)
    assert fixed.update(100.0, 1000) == 0.3

    # inside the trainer: beta of step k is used for its rewards, then updated with its KL and n
    cfg = PPOConfig(learning_rate=1e-2, ppo_epochs=1, init_kl_coef=0.5, target_kl=0.01, kl_horizon=10)
    trainer = PPOTrainer(tiny_gpt2(6), None, cfg)
    s1 = trainer.step(QUERIES, RESPONSES, SCORES)
    assert s1["kl"] == pytest.approx(0.0, abs=1e-6) and s1["beta"] == 0.5  # policy == reference
    assert trainer.kl_ctl.value == pytest.approx(0.5 * (1 - 0.2 * 2 / 10))
    s2 = trainer.step(QUERIES, RESPONSES, SCORES)
    assert s2["beta"] == pytest.approx(0.48)
    err = min(max(s2["kl"] / 0.01 - 1, -0.2), 0.2)
    assert abs(s2["kl"]) > 1e-4
    assert trainer.kl_ctl.value == pytest.approx(0.48 * (1 + err * 2 / 10))
    assert trainer.kl_ctl.value != pytest.approx(0.48, abs=1e-4)
    fixed = PPOTrainer(tiny_gpt2(6), None, PPOConfig(kl_control="fixed", init_kl_coef=0.5, ppo_epochs=1))
    fixed.step(QUERIES, RESPONSES, SCORES)
    assert fixed.kl_ctl.value == 0.5


def test_left_padding_does_not_change_the_loss():
    model = tiny_gpt2(7)
    trainers = {m: PPOTrainer(model, None, PPOConfig(pad_to_multiple_of=m, temperature=0.8)) for m in (None, 16)}
    base = trainers[None]
    perturb(model, 0.3, seed=8)
    with torch.no_grad():
        base.value_head.summary.weight.normal_(0, 0.5)
    trainers[16].value_head.load_state_dict(base.value_head.state_dict())
    trainers[16].ref_model = base.ref_model

    rolls = {m: t.rollout(QUERIES, RESPONSES, SCORES) for m, t in trainers.items()}
    b = trainers[16]._collate(QUERIES, RESPONSES)
    assert b.input_ids.shape == (2, 32)  # 16 + 16: both queries carry extra left padding
    assert (b.attention_mask[:, :16].sum(1) == torch.tensor([3, 5])).all()
    for key in ("logprobs", "ref_logprobs", "values", "advantages", "returns"):
        x, y = getattr(rolls[None], key), getattr(rolls[16], key)
        torch.testing.assert_close(x, y[:, :x.shape[1]], atol=1e-5, rtol=0)
        assert (y[:, x.shape[1]:] == 0).all()

    # one sequence alone (no padding at all) vs. in the batch (left- and right-padded)
    alone = base.rollout(QUERIES[1:], RESPONSES[1:], SCORES[1:])
    torch.testing.assert_close(alone.logprobs[0], rolls[None].logprobs[1, :2], atol=1e-5, rtol=0)
    torch.testing.assert_close(alone.values[0], rolls[None].values[1, :2], atol=1e-5, rtol=0)

    perturb(model, 0.05, seed=9)
    (l0, s0), (l1, s1) = (t.compute_loss(rolls[m]) for m, t in trainers.items())
    assert abs(l0.item() - l1.item()) < 1e-5 and l0.item() != 0
    for k in s0:
        assert abs(s0[k].item() - s1[k].item()) < 1e-5, k


def test_micro_batches_accumulate_to_the_same_update():
    """Gradient accumulation over micro-batches reproduces the whole-minibatch update."""
    queries = QUERIES + [[6, 6], [1]]
    responses = RESPONSES + [[3, 3, 3], [2, 4, 6, 8, 10]]
    scores = SCORES + [0.3, 0.0]
    params = {}
    for micro in (None, 1, 3):
        model = tiny_gpt2(10)
        cfg = PPOConfig(learning_rate=1e-3, micro_batch_size=micro, ppo_epochs=2, mini_batch_size=4)
        PPOTrainer(model, None, cfg).step(queries, responses, scores)
        params[micro] = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = (params[None] - torch.cat([p.detach().flatten() for p in tiny_gpt2(10).parameters()])).abs().max()
    assert moved > 1e-4
    torch.testing.assert_close(params[1], params[None], atol=1e-6, rtol=0)
    torch.testing.assert_close(params[3], params[None], atol=1e-6, rtol=0)


def test_save_and_resume(tmp_path):
    cfg = PPOConfig(learning_rate=1e-3, ppo_epochs=1, init_kl_coef=0.1)
    trainer = PPOTrainer(tiny_gpt2(11), None, cfg)
    trainer.step(QUERIES, RESPONSES, SCORES)
    trainer.step(QUERIES, RESPONSES, SCORES)
    trainer.save_pretrained(tmp_path / "ckpt", reference=True)
    resumed = PPOTrainer.from_pretrained(tmp_path / "ckpt")
    assert resumed.steps == 2 and resumed.kl_ctl.value == trainer.kl_ctl.value
    assert resumed.config == cfg
    assert torch.equal(resumed.value_head.summary.weight, trainer.value_head.summary.weight)
    assert resumed.value_head.summary.weight.abs().sum() > 0  # the trained head, not a fresh zero one
    for a, b in zip(trainer.ref_model.parameters(), resumed.ref_model.parameters(), strict=True):
        assert torch.equal(a, b)
    s_a = trainer.step(QUERIES, RESPONSES, SCORES)
    s_b = resumed.step(QUERIES, RESPONSES, SCORES)
    for k in ("loss", "kl", "beta", "grad_norm"):
        assert s_a[k] == pytest.approx(s_b[k], abs=1e-6), k
    for a, b in zip(trainer.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    with pytest.warns(UserWarning, match="reference"):
        (tmp_path / "noref").mkdir()
        trainer.save_pretrained(tmp_path / "noref", optimizer=False)
        PPOTrainer.from_pretrained(tmp_path / "noref")


def test_bad_input_gets_a_clear_error():
    trainer = PPOTrainer(tiny_gpt2(12), None, PPOConfig(ppo_epochs=1))
    with pytest.raises(ValueError, match="differ in length"):
        trainer.step(QUERIES, RESPONSES, [1.0])
    with pytest.raises(ValueError, match=r"responses\[1\] is empty"):
        trainer.step(QUERIES, [[1], []], SCORES)
    with pytest.raises(ValueError, match="finite"):
        trainer.step(QUERIES, RESPONSES, [float("nan"), 0.0])
    with pytest.raises(ValueError, match="outside"):
        trainer.step(QUERIES, [[1], [99]], SCORES)
    with pytest.raises(TypeError, match=r"queries\[0\]"):
        trainer.step([[[1, 2]], [3]], RESPONSES, SCORES)
    with pytest.raises(ValueError, match="cliprange"):
        PPOConfig(cliprange=0)
    with pytest.raises(ValueError, match="kl_control"):
        PPOConfig(kl_control="adaptve")
    with pytest.raises(TypeError, match="mini_batch_size"):
        PPOConfig(mini_batch_size=2.5)


def test_old_name_lam_still_sets_gae_lambda_with_a_warning():
    with pytest.warns(DeprecationWarning, match="PPOConfig.lam is now PPOConfig.gae_lambda"):
        cfg = PPOConfig(lam=0.5)
    assert cfg.gae_lambda == 0.5
    with pytest.warns(DeprecationWarning, match="gae_lambda"):
        assert cfg.lam == 0.5
    with pytest.warns(DeprecationWarning, match="gae_lambda"):
        cfg.lam = 0.25
    assert cfg.gae_lambda == 0.25
    with pytest.raises(ValueError, match="gae_lambda"):
        PPOConfig(gae_lambda=1.5)
    with pytest.raises(TypeError, match="gae_lambda"):
        PPOConfig(lam=0.5, gae_lambda=0.5)
    import torch

    from crlhf.ppo import gae_advantages

    r, v, m = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.2]]), torch.ones(1, 2)
    with pytest.warns(DeprecationWarning, match="gae_advantages: 'lam' is now 'gae_lambda'"):
        old = gae_advantages(r, v, m, 0.9, lam=0.5)
    torch.testing.assert_close(old, gae_advantages(r, v, m, 0.9, gae_lambda=0.5))
    # a config saved before the rename (ppo_state.json, a run folder's config) still loads
    with pytest.warns(DeprecationWarning, match="gae_lambda"):
        assert PPOConfig.from_dict({"lam": 0.9, "learning_rate": 1e-4}).gae_lambda == 0.9


def test_step_on_completion_objects():
    """Duck-typed Completion objects (as crlhf.policy makes them), nested per prompt; their
    sampling log-probs are checked against the policy's."""
    model = tiny_gpt2(13)
    trainer = PPOTrainer(model, None, PPOConfig(ppo_epochs=1, temperature=0.6))

    def completion(q, r, temperature):
        lp = None if not r else seq_terms(model, None, q, r, temperature)[0].detach()
        return SimpleNamespace(prompt_ids=torch.tensor(q), token_ids=torch.tensor(r, dtype=torch.long), logprobs=lp)

    for temperature, gap in ((0.6, 1e-5), (1.0, None)):
        with torch.no_grad():
            c = [[completion(QUERIES[0], RESPONSES[0], temperature), completion(QUERIES[0], [], temperature)],
                 [completion(QUERIES[1], RESPONSES[1], temperature)]]
        with pytest.raises(ValueError, match="completion 1 has no tokens"):
            trainer.step_completions(c, [[1.0, 0.0], [0.5]])
        c[0][1] = completion(QUERIES[0], [5], temperature)
        stats = trainer.step_completions(c, [[1.0, 0.0], [0.5]])
        assert stats["tokens"] == 4 + 1 + 2
        assert stats["score_mean"] == pytest.approx(0.5)
        if gap:  # log-probs sampled at the training temperature agree with the policy's
            assert stats["sample_logprob_gap"] < gap
        else:  # sampled at another temperature: the gap shows it
            assert stats["sample_logprob_gap"] > 1e-3


def test_runs_under_an_accelerator_like_the_plain_path():
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState

    try:
        acc = accelerate.Accelerator(cpu=True)
        results = []
        for accelerator in (None, acc):
            model = tiny_gpt2(14)
            trainer = PPOTrainer(model, None, PPOConfig(learning_rate=1e-3, ppo_epochs=2), accelerator=accelerator)
            stats = trainer.step(QUERIES, RESPONSES, SCORES)
            results.append((stats, torch.cat([p.detach().flatten() for p in model.parameters()])))
        (s0, p0), (s1, p1) = results
        torch.testing.assert_close(p0, p1, atol=1e-6, rtol=0)
        assert s0["loss"] == pytest.approx(s1["loss"], abs=1e-6)
    finally:
        AcceleratorState._reset_state(True)


DDP_WORKER = r'''
import json, os, sys
import torch
torch.set_num_threads(1)
from accelerate import Accelerator
import transformers
from crlhf.ppo import PPOConfig, PPOTrainer

acc = Accelerator(cpu=True)
rank = acc.process_index
torch.manual_seed(0)
cfg = transformers.GPT2Config(vocab_size=32, n_positions=64, n_embd=16, n_layer=2, n_head=2,
                              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
model = transformers.GPT2LMHeadModel(cfg)
trainer = PPOTrainer(model, None, PPOConfig(learning_rate=1e-3, ppo_epochs=2, micro_batch_size=1), accelerator=acc)
queries = [[[3, 7, 1], [5, 2, 9, 4, 8]], [[6, 6], [1]]][rank]
responses = [[[10, 11, 12, 13], [14, 15]], [[3, 3, 3], [2, 4, 6, 8, 10]]][rank]
scores = [[1.0, -0.5], [0.3, 0.0]][rank]
for _ in range(2):
    stats = trainer.step(queries, responses, scores)
params = torch.cat([p.detach().flatten() for p in model.parameters()])
out = {"stats": stats, "wrapper": type(trainer.module).__name__,
       "params_sum": float(params.double().sum()), "beta": trainer.kl_ctl.value}
try:
    trainer.step(queries[:1 + rank], responses[:1 + rank], scores[:1 + rank])
except ValueError as exc:
    out["uneven"] = str(exc)
json.dump(out, open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w"))
acc.wait_for_everyone()
torch.distributed.destroy_process_group()  # a clean exit: gloo threads left running can abort
'''


def test_two_processes_under_torch_distributed(tmp_path):
    """DDP over two CPU processes (gloo), as `accelerate launch` runs it on two GPUs: the
    replicas stay identical, statistics are gathered over both, uneven batches are refused."""
    pytest.importorskip("accelerate")
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["wrapper"] == "DistributedDataParallel"
    assert r0["params_sum"] == r1["params_sum"]  # identical replicas after the updates
    timing = {"time", "time_rollout", "time_update", "tokens_per_s"}  # each process's own clock
    assert {k: v for k, v in r0["stats"].items() if k not in timing} == \
        {k: v for k, v in r1["stats"].items() if k not in timing}  # reduced over both processes
    assert r0["stats"]["score_mean"] == pytest.approx((1.0 - 0.5 + 0.3 + 0.0) / 4)
    assert r0["stats"]["tokens"] == 4 + 2 + 3 + 5
    assert r0["beta"] == r1["beta"] != 0.2
    assert "same number of triples" in r0["uneven"] and "same number of triples" in r1["uneven"]


def test_gradient_checkpointing_gives_the_same_update():
    """Checkpointing runs the model in train() mode: dropout (0.3 here) must still be off."""
    params = []
    for ckpt in (False, True):
        model = tiny_gpt2(15, dropout=0.3)
        PPOTrainer(model, None, PPOConfig(learning_rate=1e-3, ppo_epochs=1, gradient_checkpointing=ckpt)).step(
            QUERIES, RESPONSES, SCORES)
        on = (model.is_activation_checkpointing if hasattr(model, "is_activation_checkpointing")
              else model.is_gradient_checkpointing)  # the name changed in transformers 5.2x
        assert on == ckpt
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(params[0], params[1], atol=1e-6, rtol=0)
