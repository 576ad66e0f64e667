"""PPO on (query, response, score) triples, after Ziegler et al. (2019).

One file, one dataclass of hyper-parameters, in the style of cleanRL and
openai/lm-human-preferences. The caller samples responses with any Hugging Face causal LM,
scores them (here: the crowd's Bayesian score ``s``), and hands the triples to
:meth:`PPOTrainer.step`. No reward model is involved.

The objective, for a query ``x``, a response ``y = y_1..y_T`` and its score ``s``:

* per-token reward (Ziegler et al. 2019, eq. 2)::

      r_t = -beta * (log pi(y_t | x, y_<t) - log rho(y_t | x, y_<t))  +  [t = T] * s  +  u_t

  ``pi`` is the policy, ``rho`` the frozen reference (the initial / SFT policy); both
  log-probabilities use ``logits / temperature``, the temperature the responses were sampled at.
  ``u_t`` are optional per-token rewards (``token_rewards``; 0 without them), e.g. the dense
  line-end rewards of Fine-Grained RLHF (Wu et al. 2023: a segment's reward at its
  last token; :func:`crlhf.reward.credit`).
* adaptive KL coefficient (Ziegler et al. 2019, §2.2)::

      e = clip(KL / KL_target - 1, -0.2, 0.2);   beta <- beta * (1 + e * n / horizon)

  ``KL`` is the batch mean of the per-sequence sum ``sum_t (log pi - log rho)``, ``n`` the
  number of sequences in the batch.
* GAE (Schulman et al. 2016)::

      delta_t = r_t + gamma * V_{t+1} - V_t      (V_{T+1} = 0: the episode ends at y_T)
      A_t = delta_t + gamma * lambda * A_{t+1},   R_t = A_t + V_t   (the value target)

  Advantages are then whitened over every response token of the batch. Optional per-token
  advantage weights ``w_t`` in [0, 1] (``advantage_weights``) then scale the *negative*
  advantages only::

      A_t <- A_t                 if A_t >= 0
      A_t <- w_t * A_t           if A_t < 0

  so that a program's penalty falls on the tokens the caller blames (the lines judged wrong:
  RLTF, Liu et al. 2023; StepCoder, Dou et al. 2024) while its credit, and the value target
  ``R_t``, are untouched. Without weights ``w_t = 1``.
* clipped surrogate and clipped value loss (Schulman et al. 2017, eq. 7; openai/baselines
  ppo2), token means over a minibatch::

      rho_t = exp(log pi_new(y_t) - log pi_old(y_t))
      L_pi = mean_t max(-A_t * rho_t, -A_t * clip(rho_t, 1 - eps, 1 + eps))
      L_V  = 0.5 * mean_t max((V_t - R_t)^2, (clip(V_t, V_old - eps_v, V_old + eps_v) - R_t)^2)
      L    = L_pi + vf_coef * L_V

  optimised with AdamW for ``ppo_epochs`` passes over shuffled minibatches, with gradient-norm
  clipping.

Design choices (where the papers leave room):

* **Value head**: a single linear map ``V_t = w . h_t + b`` on the policy's last hidden state
  (after the final layer norm), no dropout, weights and bias initialised to zero (as in
  lm-human-preferences) so that the first values are 0 and the value loss sends no gradient
  into the trunk at the start. Trunk shared with the policy and trained jointly, as in
  Ziegler et al. and TRL; it is kept in float32 whatever the model's dtype.
* **No dropout**: the policy runs in ``eval()`` mode (Ziegler et al.: "we do not use dropout
  for policy training"), so that old and new log-probabilities agree before the first update.
* **Padding**: queries are left-padded, responses right-padded, and ``position_ids`` come from
  the attention mask, so a sequence's log-probs and values do not depend on the batch it is in.
  Every loss and statistic masks padding out.
* **Reference**: a ``deepcopy`` of the policy taken at construction (or the model given as
  ``ref_model``), in ``eval()`` mode with ``requires_grad=False``; nothing ever updates it.
  For a PEFT model (LoRA: base + adapter, e.g. from :func:`crlhf.policy.add_lora`) without a
  ``ref_model``, the reference is the same base with the adapter disabled
  (``model.disable_adapter()``): no second copy of the weights, and only the adapter (and the
  value head) is trained. Checkpoints then hold the adapter, and :meth:`PPOTrainer.from_pretrained`
  loads the base named in its ``adapter_config.json`` with the adapter on top.
* **Mixed precision**: on CUDA, ``mixed_precision="auto"`` runs forwards under bf16 autocast
  where the card supports it; the weights stay in the dtype they came in (float32 master
  weights for a float32 model). Log-probabilities, values and losses are computed in float32.
* **Several processes**: with an ``accelerate.Accelerator`` (given, or
  ``config.use_accelerate=True``) the policy + value head and the optimiser are ``prepare``-d
  (DDP under ``accelerate launch``). Each process passes its own triples (the same number on
  every process); whitening and statistics are reduced over all processes, and ``n`` in the KL
  controller is the global batch size. Without it, ``accelerate`` is not imported. In a
  single process (no ``accelerate launch``) the accelerator changes nothing: no wrapper, the
  same updates as without it.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._deprecation import renamed_fields, renamed_keys
from .policy import hf_progress_bars_off

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

__all__ = [
    "PPOConfig",
    "PPOTrainer",
    "Rollout",
    "ValueHead",
    "AdaptiveKLController",
    "is_peft_model",
    "FixedKLController",
    "masked_mean",
    "masked_whiten",
    "kl_penalized_rewards",
    "weight_negative_advantages",
    "gae_advantages",
    "clipped_policy_loss",
    "clipped_value_loss",
]

VALUE_HEAD_FILE = "value_head.safetensors"
STATE_FILE = "ppo_state.json"
OPTIMIZER_FILE = "optimizer.pt"
REFERENCE_DIR = "reference"


# --------------------------------------------------------------------------- configuration
@renamed_fields({"lam": "gae_lambda"})
@dataclass
class PPOConfig:
    """Hyper-parameters of PPO; defaults are Ziegler et al. (2019) / lm-human-preferences.

    Batches: ``step`` receives one *batch* of triples (per process). Each of ``ppo_epochs``
    epochs shuffles it and takes one optimiser step per *minibatch* of ``mini_batch_size``
    sequences (``None``: the whole batch, one step per epoch, as lm-human-preferences'
    ``nminibatches=1``). A minibatch is run in forward/backward chunks of ``micro_batch_size``
    sequences with gradients accumulated, which only saves memory: the update is the same.

    ``gae_lambda`` is GAE's lambda (it was ``lam``, which still works with a warning; ``lam`` in
    :class:`crlhf.crowd.CrowdModel` is eq (8)'s step).
    """

    # optimiser
    learning_rate: float = 1e-5
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-5
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    # batching
    ppo_epochs: int = 4
    mini_batch_size: int | None = None
    micro_batch_size: int | None = None
    # PPO / GAE
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    gae_lambda: float = 0.95
    whiten_advantages: bool = True
    # KL penalty
    kl_control: str = "adaptive"  # "adaptive" (Ziegler et al.) or "fixed" (beta = init_kl_coef)
    init_kl_coef: float = 0.2
    target_kl: float = 6.0
    kl_horizon: int = 10000
    # sampling temperature of the responses: log-probs use logits / temperature
    temperature: float = 1.0
    # hardware
    mixed_precision: str = "auto"  # "auto": bf16 autocast on CUDA if supported; "bf16"; "no"
    gradient_checkpointing: bool = False
    pad_to_multiple_of: int | None = None  # pad query and response blocks (fewer shapes on GPU)
    use_accelerate: bool = False
    seed: int = 0

    def __post_init__(self):
        def positive(name, allow_none=False, integer=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
                raise TypeError(f"PPOConfig.{name} must be a {'positive int' if integer else 'number'}, got {v!r}")
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"PPOConfig.{name} must be > 0, got {v!r}")

        for name in ("learning_rate", "adam_eps", "cliprange", "cliprange_value", "temperature",
                     "target_kl"):
            positive(name)
        for name in ("ppo_epochs", "kl_horizon"):
            positive(name, integer=True)
        for name in ("mini_batch_size", "micro_batch_size", "pad_to_multiple_of"):
            positive(name, allow_none=True, integer=True)
        positive("max_grad_norm", allow_none=True)
        for name in ("vf_coef", "init_kl_coef", "weight_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"PPOConfig.{name} must be >= 0, got {v!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"PPOConfig.{name} must be in [0, 1], got {v!r}")
        betas = tuple(float(b) for b in self.adam_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"PPOConfig.adam_betas must be two numbers in [0, 1), got {betas!r}")
        self.adam_betas = (betas[0], betas[1])
        if self.kl_control not in ("adaptive", "fixed"):
            raise ValueError(f"PPOConfig.kl_control must be 'adaptive' or 'fixed', got {self.kl_control!r}")
        if self.mixed_precision not in ("auto", "bf16", "no"):
            raise ValueError(f"PPOConfig.mixed_precision must be 'auto', 'bf16' or 'no', got {self.mixed_precision!r}")

    @classmethod
    def from_dict(cls, d: dict) -> PPOConfig:
        """A config from :func:`dataclasses.asdict` output; unknown keys raise ``ValueError``."""
        d = renamed_keys(d, {"lam": "gae_lambda"}, "PPOConfig")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PPOConfig fields: {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------- KL controllers
class AdaptiveKLController:
    """Ziegler et al. (2019) §2.2: ``beta <- beta * (1 + clip(KL/target - 1, -0.2, 0.2) * n/horizon)``."""

    def __init__(self, init_kl_coef: float = 0.2, target: float = 6.0, horizon: int = 10000):
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, kl: float, n_steps: int) -> float:
        """Move beta towards the KL target after a batch of ``n_steps`` sequences; return it."""
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


class FixedKLController:
    """A constant KL coefficient ``beta``."""

    def __init__(self, kl_coef: float):
        self.value = float(kl_coef)

    def update(self, kl: float, n_steps: int) -> float:
        return self.value


# --------------------------------------------------------------------------- the maths
def masked_mean(x: torch.Tensor, mask: torch.Tensor, denom: torch.Tensor | float | None = None) -> torch.Tensor:
    """``sum(x[mask]) / denom``; ``denom`` defaults to the number of valid entries."""
    mask = mask.bool()
    total = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum()
    if denom is None:
        denom = mask.sum().clamp(min=1)
    return total / denom


def _global_sum(t: torch.Tensor, accelerator) -> torch.Tensor:
    if accelerator is not None and accelerator.num_processes > 1:
        return accelerator.reduce(t, reduction="sum")
    return t


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8,
                  accelerator=None) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` over the valid entries (population variance, as
    lm-human-preferences' ``whiten``); with an accelerator, over all processes' entries.
    ``shift_mean=False`` adds the mean back. Padding entries come out as 0."""
    m = mask.bool()
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    n = _global_sum(m.sum().to(x.dtype), accelerator).clamp(min=1)
    mean = _global_sum(torch.where(m, x, zero).sum(), accelerator) / n
    var = _global_sum(torch.where(m, (x - mean) ** 2, zero).sum(), accelerator) / n
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(m, out, zero)


def kl_penalized_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor,
                         mask: torch.Tensor, beta: float, token_rewards: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ziegler et al. eq. 2: ``r_t = -beta (logp_t - logp_ref_t)``, plus ``s`` at each
    sequence's last response token, plus ``token_rewards`` ``u_t`` (``[B, T]``, optional).
    ``[B, T]`` inputs, right-padded (``mask`` a prefix mask).
    Returns ``(rewards, kl)`` with ``kl_t = logp_t - logp_ref_t`` (0 on padding)."""
    m = mask.bool()
    kl = torch.where(m, logprobs - ref_logprobs, torch.zeros((), dtype=logprobs.dtype, device=logprobs.device))
    rewards = -beta * kl
    last = m.sum(dim=1) - 1
    if (last < 0).any():
        raise ValueError("every response needs at least one token (mask row of zeros)")
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    if token_rewards is not None:
        rewards = rewards + torch.where(m, token_rewards.to(rewards.dtype), torch.zeros((), dtype=rewards.dtype,
                                                                                        device=rewards.device))
    return rewards, kl


def weight_negative_advantages(advantages: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``A_t <- w_t A_t`` where ``A_t < 0``, unchanged elsewhere (blame, see the module docstring)."""
    if weights is None:
        return advantages
    return torch.where(advantages < 0, advantages * weights.to(advantages.dtype), advantages)


def gae_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
                   gae_lambda: float = 0.95, *, lam: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016): ``delta_t = r_t + gamma V_{t+1} - V_t``, ``A_t = delta_t +
    gamma lambda A_{t+1}``, with ``V = 0`` after a sequence's last token. Returns
    ``(advantages, returns = advantages + values)``, 0 on padding. ``mask``: right padding.
    ``lam``: the old name of ``gae_lambda`` (deprecated)."""
    if lam is not None:
        warnings.warn("gae_advantages: 'lam' is now 'gae_lambda'; the old name will be removed", DeprecationWarning,
                      stacklevel=2)
        gae_lambda = lam
    m = mask.bool()
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    values = torch.where(m, values, zero)
    rewards = torch.where(m, rewards, zero)
    advantages = torch.zeros_like(values)
    last_gae = torch.zeros_like(values[:, 0])
    T = values.shape[1]
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * gae_lambda * last_gae
        advantages[:, t] = last_gae
    advantages = torch.where(m, advantages, zero)
    return advantages, torch.where(m, advantages + values, zero)


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, cliprange: float, denom=None) -> dict[str, torch.Tensor]:
    """Schulman et al. (2017) eq. 7, as a loss: ``mean_t max(-A rho, -A clip(rho, 1-eps, 1+eps))``
    with ``rho = exp(logp - logp_old)``. Returns ``loss``, ``clipfrac`` (share of tokens where
    the clipped term is the larger), ``approx_kl`` (``0.5 mean (logp - logp_old)^2``), ``ratio``."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    return {
        "loss": masked_mean(torch.maximum(unclipped, clipped), mask, denom),
        "clipfrac": masked_mean((clipped > unclipped).to(ratio.dtype), mask, denom).detach(),
        "approx_kl": masked_mean(0.5 * log_ratio.detach() ** 2, mask, denom),
        "ratio": masked_mean(ratio.detach(), mask, denom),
    }


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       mask: torch.Tensor, cliprange_value: float, denom=None) -> dict[str, torch.Tensor]:
    """``0.5 mean_t max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)`` (openai/baselines
    ppo2, lm-human-preferences). Returns ``loss`` and ``clipfrac``."""
    v_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    loss1 = (values - returns) ** 2
    loss2 = (v_clipped - returns) ** 2
    return {
        "loss": 0.5 * masked_mean(torch.maximum(loss1, loss2), mask, denom),
        "clipfrac": masked_mean((loss2 > loss1).to(values.dtype), mask, denom).detach(),
    }


# --------------------------------------------------------------------------- modules
class ValueHead(nn.Module):
    """``V_t = w . h_t + b`` on the last hidden state; zero-initialised, float32, no dropout."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


@dataclass
class _Batch:
    """Left-padded queries then right-padded responses: ``[b, Q + R]`` model inputs, and the
    ``[b, R]`` response block with its mask."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_ids: torch.Tensor
    mask: torch.Tensor

    @property
    def n_response(self) -> int:
        return self.response_ids.shape[1]


def _round_up(n: int, multiple: int | None) -> int:
    return n if not multiple else -(-n // multiple) * multiple


def _collate(queries: Sequence[torch.Tensor], responses: Sequence[torch.Tensor], pad_id: int,
             device, multiple: int | None = None) -> _Batch:
    Q = _round_up(max(len(q) for q in queries), multiple)
    R = _round_up(max(len(r) for r in responses), multiple)
    b = len(queries)
    input_ids = torch.full((b, Q + R), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((b, Q + R), dtype=torch.long)
    for i, (q, r) in enumerate(zip(queries, responses, strict=True)):
        input_ids[i, Q - len(q):Q] = torch.as_tensor(q)
        input_ids[i, Q:Q + len(r)] = torch.as_tensor(r)
        attention_mask[i, Q - len(q):Q + len(r)] = 1
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    input_ids, attention_mask, position_ids = (t.to(device) for t in (input_ids, attention_mask, position_ids))
    return _Batch(input_ids, attention_mask, position_ids, input_ids[:, Q:], attention_mask[:, Q:].bool())


def _accepts(model: nn.Module, name: str) -> bool:
    """Whether ``model.forward`` takes keyword ``name`` (explicitly or through ``**kwargs``,
    as wrappers such as PEFT pass it on). If a model then ignores ``logits_to_keep``, the
    slicing below still picks the right positions out of the full logits."""
    params = inspect.signature(model.forward).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _response_forward(model: nn.Module, batch: _Batch, hidden: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (and last hidden states) at the positions that predict the response tokens."""
    R = batch.n_response
    kwargs: dict[str, Any] = dict(attention_mask=batch.attention_mask, use_cache=False)
    if _accepts(model, "position_ids"):
        kwargs["position_ids"] = batch.position_ids
    if _accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = R + 1  # logits are needed for the last R + 1 positions only
    out = model(batch.input_ids, output_hidden_states=hidden, **kwargs)
    logits = out.logits[:, -(R + 1):-1]
    h = out.hidden_states[-1][:, -(R + 1):-1] if hidden else None
    return logits, h


class _PolicyWithValue(nn.Module):
    """The policy LM and its value head as one module (one DDP wrapper under accelerate)."""

    def __init__(self, model: nn.Module, value_head: ValueHead):
        super().__init__()
        self.model = model
        self.value_head = value_head

    def forward(self, input_ids, attention_mask, position_ids, response_ids, mask):
        batch = _Batch(input_ids, attention_mask, position_ids, response_ids, mask)
        logits, hidden = _response_forward(self.model, batch, hidden=True)
        return logits, self.value_head(hidden)


def _logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float, entropy: bool = False):
    """``log softmax(logits / T)`` at ``ids`` (float32), and the entropy of that distribution."""
    logp_all = F.log_softmax(logits.float() / temperature, dim=-1)
    logp = logp_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    if not entropy:
        return logp, None
    with torch.no_grad():
        ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent


# --------------------------------------------------------------------------- the trainer
@dataclass
class Rollout:
    """One batch of experience. ``[B, R]`` tensors are right-padded; ``mask`` marks response
    tokens. ``logprobs``/``values`` are the policy's before the update (the "old" ones)."""

    queries: list[torch.Tensor]
    responses: list[torch.Tensor]
    scores: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    kl: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    beta: float

    def __len__(self) -> int:
        return len(self.queries)


def _as_ids(x, what: str, i: int) -> torch.Tensor:
    try:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu()
        else:
            t = torch.as_tensor(x if hasattr(x, "__array__") else list(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{what}[{i}] must be a 1-D sequence of integer token ids, got {type(x).__name__}") from exc
    if t.dim() != 1:
        raise TypeError(f"{what}[{i}] must be a 1-D sequence of token ids, got shape {tuple(t.shape)}")
    if t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
        raise TypeError(f"{what}[{i}] must hold integer token ids, got {t.dtype}")
    return t.long()


def _hidden_size(model: PreTrainedModel) -> int:
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(out, nn.Linear):
        return out.in_features
    cfg = model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if isinstance(getattr(cfg, name, None), int):
            return getattr(cfg, name)
    raise TypeError("cannot tell the model's hidden size (no output embedding, no config.hidden_size)")


def is_peft_model(model) -> TypeGuard[PeftModel]:
    """Whether ``model`` is a PEFT model (base + adapter) whose adapter can be switched off."""
    return hasattr(model, "peft_config") and callable(getattr(model, "disable_adapter", None))


def _disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0: ``nn.Dropout`` modules and float attributes named
    ``*dropout*`` (attention dropout passed to ``scaled_dot_product_attention`` as a number)."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
        for name, v in list(vars(m).items()):
            if "dropout" in name and isinstance(v, float):
                setattr(m, name, 0.0)


class PPOTrainer:
    """PPO with a KL penalty to a frozen reference, on any Hugging Face causal LM.

    ``model`` is trained in place (sample from it between steps); ``tokenizer`` is only used
    for the pad id and for saving (``None`` is allowed). ``ref_model`` defaults to a frozen
    deep copy of ``model`` as it is now, or for a PEFT model the same base with the adapter
    disabled (``ref_model`` is then ``None``). ``accelerator``: an ``accelerate.Accelerator``
    for multi-GPU runs (see the module docstring).
    """

    def __init__(self, model: PreTrainedModel, tokenizer=None, config: PPOConfig | None = None,
                 ref_model: PreTrainedModel | None = None, accelerator=None):
        config = PPOConfig() if config is None else config
        if not isinstance(config, PPOConfig):
            raise TypeError(f"config must be a PPOConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (a Hugging Face causal LM), got {type(model).__name__}")
        if ref_model is model:
            raise ValueError("ref_model must be a separate copy of the policy, not the policy itself")
        self.config = config
        self.tokenizer = tokenizer
        if accelerator is None and config.use_accelerate:
            from accelerate import Accelerator

            accelerator = Accelerator()
        self.accelerator = accelerator
        self.device = accelerator.device if accelerator is not None else next(model.parameters()).device

        # transformers' decorator on PreTrainedModel.to hides that it binds self
        self.model = model.to(self.device)  # type: ignore[arg-type]
        self.ref_model = None
        if ref_model is not None or not is_peft_model(model):  # a PEFT model's reference: adapter off
            self.ref_model = copy.deepcopy(model) if ref_model is None else ref_model
            self.ref_model.to(self.device).eval().requires_grad_(False)  # type: ignore[arg-type]
        self.value_head = ValueHead(_hidden_size(model)).to(self.device)
        emb: Any = model.get_input_embeddings()  # an nn.Embedding, or a wrapper (PEFT) that has its size
        self.vocab_size = int(emb.num_embeddings)
        self.pad_token_id = self._pad_token_id()

        if config.gradient_checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            _disable_dropout(model)  # checkpointing runs in train() mode only
        self._params = [p for p in (*model.parameters(), *self.value_head.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self._params, lr=config.learning_rate, betas=config.adam_betas,
                                           eps=config.adam_eps, weight_decay=config.weight_decay)
        self.module: nn.Module = _PolicyWithValue(self.model, self.value_head)
        if accelerator is not None:
            self.module, self.optimizer = accelerator.prepare(self.module, self.optimizer)
        self.kl_ctl = (AdaptiveKLController(config.init_kl_coef, config.target_kl, config.kl_horizon)
                       if config.kl_control == "adaptive" else FixedKLController(config.init_kl_coef))
        rank = accelerator.process_index if accelerator is not None else 0
        self._generator = torch.Generator().manual_seed(config.seed + 100003 * rank)
        self.steps = 0
        trained = [p for p in model.parameters() if p.requires_grad]
        if trained and trained[0].dtype != torch.float32:
            warnings.warn(f"the policy is {trained[0].dtype}: AdamW updates those weights directly "
                          "(no float32 master copy); load the model in float32 for mixed precision", stacklevel=2)

    # ------------------------------------------------------------------ helpers
    def _pad_token_id(self) -> int:
        for src in (self.tokenizer, getattr(self.model, "config", None)):
            for name in ("pad_token_id", "eos_token_id"):
                v = getattr(src, name, None) if src is not None else None
                if isinstance(v, (list, tuple)):
                    v = v[0] if v else None
                if isinstance(v, int) and 0 <= v < self.vocab_size:
                    return v
        return 0  # padded positions are masked out: any valid id will do

    @property
    def eos_token_id(self) -> int | None:
        for src in (self.tokenizer, getattr(self.model, "config", None)):
            v = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(v, (list, tuple)):
                v = v[0] if v else None
            if isinstance(v, int):
                return v
        return None

    def _autocast(self):
        mp, dev = self.config.mixed_precision, self.device.type
        if mp == "no" or (mp == "auto" and not (dev == "cuda" and torch.cuda.is_bf16_supported())):
            return contextlib.nullcontext()
        return torch.autocast(device_type=dev, dtype=torch.bfloat16)

    def _set_modes(self):
        # eval(): no dropout (Ziegler et al.). Gradient checkpointing runs only in train() mode,
        # where dropout was switched off at construction.
        self.module.train(self.config.gradient_checkpointing)
        if self.ref_model is not None:
            self.ref_model.eval()

    def _collate(self, queries, responses) -> _Batch:
        return _collate(queries, responses, self.pad_token_id, self.device, self.config.pad_to_multiple_of)

    def _policy_forward(self, batch: _Batch):
        with self._autocast():
            return self.module(batch.input_ids, batch.attention_mask, batch.position_ids, batch.response_ids,
                               batch.mask)

    def _ref_forward(self, batch: _Batch) -> torch.Tensor:
        if self.ref_model is None:  # PEFT: the base with the adapter switched off
            model = self.model
            assert is_peft_model(model)
            with self._autocast(), model.disable_adapter():
                logits, _ = _response_forward(model, batch, hidden=False)
            return logits
        with self._autocast():
            logits, _ = _response_forward(self.ref_model, batch, hidden=False)
        return logits

    def _chunks(self, idx: torch.Tensor, size: int | None) -> list[torch.Tensor]:
        return list(idx.split(size)) if size else [idx]

    def _per_token(self, values, responses, what: str, low=None, high=None):
        """Per-response 1-D sequences (``token_rewards`` / ``advantage_weights``) as a ``[B, R]``
        tensor (0 past each response), checked: one value per response token, finite, in range."""
        if values is None:
            return None
        values = list(values)
        if len(values) != len(responses):
            raise ValueError(f"{what} has {len(values)} entries for {len(responses)} responses")
        R = _round_up(max(len(r) for r in responses), self.config.pad_to_multiple_of)
        out = torch.zeros(len(responses), R, dtype=torch.float32)
        for i, (v, r) in enumerate(zip(values, responses, strict=True)):
            if v is None:
                if what == "advantage_weights":
                    out[i, :len(r)] = 1.0
                continue
            t = torch.as_tensor(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=torch.float32).reshape(-1)
            if len(t) != len(r):
                raise ValueError(f"{what}[{i}] has {len(t)} values for {len(r)} response tokens")
            if not torch.isfinite(t).all():
                raise ValueError(f"{what}[{i}] must be finite")
            if (low is not None and (t < low).any()) or (high is not None and (t > high).any()):
                raise ValueError(f"{what}[{i}] must lie in [{low}, {high}]")
            out[i, :len(r)] = t
        return out.to(self.device)

    def _check(self, queries, responses, scores):
        queries, responses = list(queries), list(responses)
        scores = torch.as_tensor(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores,
                                 dtype=torch.float32).reshape(-1)
        if not (len(queries) == len(responses) == len(scores)):
            raise ValueError("queries, responses and scores differ in length: "
                             f"{len(queries)}, {len(responses)}, {len(scores)}")
        if not queries:
            raise ValueError("queries is empty: a PPO step needs at least one (query, response, score) triple")
        if not torch.isfinite(scores).all():
            raise ValueError(f"scores must be finite, got {scores[~torch.isfinite(scores)].tolist()}")
        queries = [_as_ids(q, "queries", i) for i, q in enumerate(queries)]
        responses = [_as_ids(r, "responses", i) for i, r in enumerate(responses)]
        for what, seqs in (("queries", queries), ("responses", responses)):
            for i, s in enumerate(seqs):
                if len(s) == 0:
                    raise ValueError(f"{what}[{i}] is empty: every query and response needs at least one token")
                if s.min() < 0 or s.max() >= self.vocab_size:
                    raise ValueError(f"{what}[{i}] has token ids outside [0, {self.vocab_size})")
        return queries, responses, scores

    # ------------------------------------------------------------------ the algorithm
    def rollout(self, queries, responses, scores, token_rewards=None, advantage_weights=None) -> Rollout:
        """Old log-probs, reference log-probs, values, rewards (with beta as it is now), GAE
        advantages (whitened if configured, then weighted) and returns of a batch of triples.
        No update. ``token_rewards``/``advantage_weights``: see :meth:`step`."""
        queries, responses, scores = self._check(queries, responses, scores)
        return self._rollout(queries, responses, scores,
                             self._per_token(token_rewards, responses, "token_rewards"),
                             self._per_token(advantage_weights, responses, "advantage_weights", 0.0, 1.0))

    @torch.no_grad()
    def _rollout(self, queries, responses, scores, token_rewards=None, advantage_weights=None) -> Rollout:
        self._set_modes()
        B = len(queries)
        R = _round_up(max(len(r) for r in responses), self.config.pad_to_multiple_of)
        logprobs = torch.zeros(B, R, device=self.device)
        ref_logprobs, values = torch.zeros_like(logprobs), torch.zeros_like(logprobs)
        mask = torch.zeros(B, R, dtype=torch.bool, device=self.device)
        T = self.config.temperature
        for idx in self._chunks(torch.arange(B), self.config.micro_batch_size or self.config.mini_batch_size):
            batch = self._collate([queries[i] for i in idx], [responses[i] for i in idx])
            r, idx = batch.n_response, idx.to(self.device)
            logits, v = self._policy_forward(batch)
            logprobs[idx, :r] = _logprobs(logits, batch.response_ids, T)[0]
            values[idx, :r] = v.float()
            ref_logprobs[idx, :r] = _logprobs(self._ref_forward(batch), batch.response_ids, T)[0]
            mask[idx, :r] = batch.mask
        zero = torch.zeros((), device=self.device)
        logprobs, ref_logprobs, values = (torch.where(mask, x, zero) for x in (logprobs, ref_logprobs, values))
        scores = scores.to(self.device)
        beta = self.kl_ctl.value
        rewards, kl = kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, beta, token_rewards)
        advantages, returns = gae_advantages(rewards, values, mask, self.config.gamma, self.config.gae_lambda)
        if self.config.whiten_advantages:
            advantages = masked_whiten(advantages, mask, accelerator=self.accelerator)
        advantages = weight_negative_advantages(advantages, advantage_weights)
        return Rollout(queries, responses, scores, mask, logprobs, ref_logprobs, values, rewards,
                       kl.sum(dim=1), advantages, returns, beta)

    def compute_loss(self, rollout: Rollout, idx: torch.Tensor | Sequence[int] | None = None,
                     denom: torch.Tensor | float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L = L_pi + vf_coef * L_V`` of the current policy on sequences ``idx`` of a rollout.

        Token means over ``idx``; with ``denom`` token sums divided by ``denom`` instead (how
        micro-batches add up to their minibatch's mean). Returns the loss and detached terms.
        """
        idx = torch.arange(len(rollout)) if idx is None else torch.as_tensor(idx, dtype=torch.long)
        batch = self._collate([rollout.queries[i] for i in idx], [rollout.responses[i] for i in idx])
        R = batch.n_response
        logits, values = self._policy_forward(batch)
        logp, entropy = _logprobs(logits, batch.response_ids, self.config.temperature, entropy=True)
        values = values.float()
        dev_idx = idx.to(self.device)

        def old(x):
            return x[dev_idx, :R]

        mask = old(rollout.mask)
        pg = clipped_policy_loss(logp, old(rollout.logprobs), old(rollout.advantages), mask,
                                 self.config.cliprange, denom)
        vf = clipped_value_loss(values, old(rollout.values), old(rollout.returns), mask,
                                self.config.cliprange_value, denom)
        loss = pg["loss"] + self.config.vf_coef * vf["loss"]
        stats = {
            "loss": loss.detach(),
            "policy_loss": pg["loss"].detach(),
            "value_loss": vf["loss"].detach(),
            "entropy": masked_mean(entropy, mask, denom),
            "clipfrac": pg["clipfrac"],
            "value_clipfrac": vf["clipfrac"],
            "approx_kl": pg["approx_kl"],
            "ratio": pg["ratio"],
        }
        return loss, stats

    def _no_sync(self, skip_sync: bool):
        if skip_sync and self.accelerator is not None and self.accelerator.num_processes > 1:
            return self.accelerator.no_sync(self.module)
        return contextlib.nullcontext()

    def train_on(self, rollout: Rollout) -> dict[str, float]:
        """``ppo_epochs`` epochs of shuffled minibatches on a rollout; mean terms per update."""
        cfg = self.config
        self._set_modes()
        B = len(rollout)
        sums: dict[str, float] = defaultdict(float)
        updates = 0
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(B, generator=self._generator)
            for mb in self._chunks(order, cfg.mini_batch_size):
                denom = rollout.mask[mb.to(self.device)].sum().clamp(min=1)
                chunks = self._chunks(mb, cfg.micro_batch_size)
                for k, chunk in enumerate(chunks):
                    with self._no_sync(k < len(chunks) - 1):
                        loss, stats = self.compute_loss(rollout, chunk, denom)
                        if self.accelerator is not None:
                            self.accelerator.backward(loss)
                        else:
                            loss.backward()
                    for key, v in stats.items():
                        sums[key] += float(v)
                max_norm = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
                if self.accelerator is not None:
                    grad_norm = self.accelerator.clip_grad_norm_(self._params, max_norm)
                else:
                    grad_norm = torch.nn.utils.clip_grad_norm_(self._params, max_norm)
                sums["grad_norm"] += float(grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                updates += 1
        return {k: v / updates for k, v in sums.items()}

    def step(self, queries, responses, scores, sample_logprobs=None, *, token_rewards=None,
             advantage_weights=None) -> dict[str, float]:
        """One PPO iteration on triples ``(query ids, response ids, score)``.

        ``queries``/``responses``: sequences of 1-D token-id sequences (unpadded, any lengths,
        each non-empty); ``scores``: one float per response. Returns statistics (means over the
        batch, and over all processes under accelerate; timings are the process's own):
        ``score_mean/std``, ``kl`` (mean
        per-sequence sum of ``logp - logp_ref``), ``beta`` (the coefficient used in this step;
        the controller is updated after it), ``non_score_reward``, ``policy_loss``,
        ``value_loss``, ``loss``, ``entropy``, ``clipfrac``, ``value_clipfrac``, ``approx_kl``,
        ``ratio``, ``grad_norm``, ``response_length``, ``tokens``, ``time`` (s), ``time_rollout``,
        ``time_update``, ``tokens_per_s``, ``step``.

        ``sample_logprobs`` (optional, one 1-D tensor per response): the log-probs the sampler
        saw. Adds ``sample_logprob_gap``, the mean ``|logp_sampler - logp_policy|`` per token: a
        check that sampling and training agree (temperature, dtype, top-k/top-p change it).

        ``token_rewards`` (optional, one 1-D sequence per response, as long as it, or None):
        per-token rewards ``u_t`` added to ``r_t``. ``advantage_weights`` (optional, alike,
        values in [0, 1]; None = all 1): weights on the negative advantages. See the module
        docstring for both.
        """
        t0 = time.perf_counter()
        queries, responses, scores = self._check(queries, responses, scores)
        token_rewards = self._per_token(token_rewards, responses, "token_rewards")
        advantage_weights = self._per_token(advantage_weights, responses, "advantage_weights", 0.0, 1.0)
        acc = self.accelerator
        if acc is not None and acc.num_processes > 1:
            sizes = acc.gather(torch.tensor([len(queries)], device=self.device))
            if (sizes != sizes[0]).any():
                raise ValueError(f"every process must pass the same number of triples, got {sizes.tolist()}")
        rollout = self._rollout(queries, responses, scores, token_rewards, advantage_weights)
        t1 = time.perf_counter()
        stats = self.train_on(rollout)
        t2 = time.perf_counter()
        if sample_logprobs is not None:
            gaps = [(rollout.logprobs[i, :len(lp)].cpu() - torch.as_tensor(lp, dtype=torch.float32).cpu()).abs()
                    for i, lp in enumerate(sample_logprobs)
                    if lp is not None and len(lp) == int(rollout.mask[i].sum())]
            stats["sample_logprob_gap"] = float(torch.cat(gaps).mean()) if gaps else float("nan")

        def gather(x: torch.Tensor) -> torch.Tensor:
            return acc.gather(x) if acc is not None and acc.num_processes > 1 else x

        all_scores, all_kl = gather(rollout.scores), gather(rollout.kl)
        lengths = gather(rollout.mask.sum(dim=1).float())
        n = len(all_scores)
        mean_kl = float(all_kl.mean())
        if acc is not None and acc.num_processes > 1:
            keys = sorted(stats)
            stats = dict(zip(keys, acc.reduce(torch.tensor([stats[k] for k in keys], device=self.device),
                                              reduction="mean").tolist(), strict=True))
        beta = rollout.beta
        self.kl_ctl.update(mean_kl, n)
        self.steps += 1
        elapsed = time.perf_counter() - t0
        stats.update(
            score_mean=float(all_scores.mean()),
            score_std=float(all_scores.std(unbiased=False)),
            kl=mean_kl,
            beta=beta,
            non_score_reward=-beta * mean_kl,
            response_length=float(lengths.mean()),
            tokens=float(lengths.sum()),
            time=elapsed,
            time_rollout=t1 - t0,
            time_update=t2 - t1,
            tokens_per_s=float(lengths.sum()) / max(elapsed, 1e-9),
            step=float(self.steps),
        )
        return stats

    def step_completions(self, completions, scores, *, token_rewards=None, advantage_weights=None
                         ) -> dict[str, float]:
        """:meth:`step` on completion objects with ``.prompt_ids`` and ``.token_ids`` (e.g.
        ``crlhf.policy.Completion``); per-prompt nested lists are flattened, ``scores`` alike.
        Every completion must hold at least one token (``Policy.sample`` keeps the token that
        ended a program, stop sequence or EOS: nothing is trained that was not sampled).
        Completions with ``.logprobs`` add ``sample_logprob_gap`` to the statistics.
        ``token_rewards``/``advantage_weights``: one per completion, flattened alike (see :meth:`step`)."""
        def flat(xs):
            out = []
            for x in xs:
                (out.extend(flat(x)) if isinstance(x, (list, tuple)) else out.append(x))
            return out

        completions = flat(list(completions))
        scores = flat(scores.tolist() if isinstance(scores, torch.Tensor) else list(scores))
        responses = []
        for i, c in enumerate(completions):
            ids = list(c.token_ids.tolist() if isinstance(c.token_ids, torch.Tensor) else c.token_ids)
            if not ids:
                raise ValueError(f"completion {i} has no tokens: PPO trains only tokens that were "
                                 f"sampled (Policy.sample keeps at least the one that ended it)")
            responses.append(ids)
        sample_logprobs = [getattr(c, "logprobs", None) for c in completions]
        def per_completion(xs):
            if xs is None:
                return None
            out = []
            for x in xs:  # a list of numbers is one completion's values; a list of sequences, a prompt's
                nested = isinstance(x, (list, tuple)) and len(x) and not isinstance(x[0], (int, float))
                (out.extend(per_completion(x)) if nested else out.append(x))
            return out

        return self.step([c.prompt_ids for c in completions], responses, scores,
                         sample_logprobs if any(lp is not None for lp in sample_logprobs) else None,
                         token_rewards=per_completion(token_rewards),
                         advantage_weights=per_completion(advantage_weights))

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, path: str | Path, *, optimizer: bool = True, reference: bool = False) -> Path:
        """Write the policy (Hugging Face format), tokenizer, value head (``value_head.safetensors``),
        config and KL state (``ppo_state.json``), optimiser state, and with ``reference=True``
        the reference model (``reference/``; none for a PEFT policy, whose reference is its base
        and whose folder holds the adapter only). Under accelerate only the main process writes."""
        from safetensors.torch import save_file

        path = Path(path)
        acc = self.accelerator
        if acc is not None:
            acc.wait_for_everyone()
        if acc is None or acc.is_main_process:
            path.mkdir(parents=True, exist_ok=True)
            with hf_progress_bars_off():
                self.model.save_pretrained(path)
                if reference and self.ref_model is not None:
                    self.ref_model.save_pretrained(path / REFERENCE_DIR)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(path)
            save_file({k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()},
                      str(path / VALUE_HEAD_FILE))
            state = {"config": asdict(self.config), "beta": self.kl_ctl.value, "steps": self.steps}
            (path / STATE_FILE).write_text(json.dumps(state, indent=1))
            if optimizer:
                torch.save(self.optimizer.state_dict(), path / OPTIMIZER_FILE)
        if acc is not None:
            acc.wait_for_everyone()
        return path

    def load_value_head(self, path: str | Path) -> None:
        """Load ``value_head.safetensors`` from a folder written by :meth:`save_pretrained`."""
        from safetensors.torch import load_file

        state = load_file(str(Path(path) / VALUE_HEAD_FILE), device="cpu")
        self.value_head.load_state_dict({k: v.to(self.device) for k, v in state.items()})

    @classmethod
    def from_pretrained(cls, path: str | Path, tokenizer=None, config: PPOConfig | None = None,
                        ref_model: PreTrainedModel | None = None, accelerator=None, **model_kwargs) -> PPOTrainer:
        """Resume a trainer saved by :meth:`save_pretrained`: policy, value head, beta, step
        count and (if saved) optimiser state. The reference is ``ref_model``, else the saved
        ``reference/`` folder, else (with a warning) a copy of the loaded policy. A folder
        holding a PEFT adapter (``adapter_config.json``) loads its base with the adapter on top,
        trainable; the reference is then the base with the adapter disabled."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not (path / STATE_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no {STATE_FILE}: not a folder written by PPOTrainer.save_pretrained")
        state = json.loads((path / STATE_FILE).read_text())
        adapter = (path / "adapter_config.json").is_file()
        with hf_progress_bars_off():
            if adapter:
                from peft import AutoPeftModelForCausalLM

                from .policy import peft_quiet

                with peft_quiet():
                    model = AutoPeftModelForCausalLM.from_pretrained(path, is_trainable=True, **model_kwargs)
            else:
                model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
            if ref_model is None and not adapter and (path / REFERENCE_DIR).is_dir():
                ref_model = AutoModelForCausalLM.from_pretrained(path / REFERENCE_DIR, **model_kwargs)
        if tokenizer is None and (path / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(path)
        if ref_model is None and not adapter:
            warnings.warn(f"{path} has no {REFERENCE_DIR}/: the KL reference is now the saved policy, "
                          "not the original one; pass ref_model= to keep the original", stacklevel=2)
        config = PPOConfig.from_dict(state["config"]) if config is None else config
        trainer = cls(model, tokenizer, config, ref_model=ref_model, accelerator=accelerator)
        trainer.load_value_head(path)
        trainer.kl_ctl.value = float(state["beta"])
        trainer.steps = int(state["steps"])
        if (path / OPTIMIZER_FILE).is_file():
            trainer.optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, map_location=trainer.device))
        return trainer
