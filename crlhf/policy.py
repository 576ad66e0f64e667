"""Policies: any Hugging Face causal LM, loaded by name or path, with batched sampling.

``Policy.sample`` returns, for each prompt, ``n`` :class:`Completion` records holding what
evaluation needs (the completion text, cut at the first stop sequence) and what PPO needs (the
kept response token ids and their log-probs under the distribution they were sampled from).

Sampling is pure temperature sampling: ``softmax(logits / T)`` with no top-k/top-p and none of
a checkpoint's own generation defaults (repetition penalties etc.), so that the recorded
log-probs are exactly those of the sampling distribution. ``T = 0`` is greedy decoding; its
log-probs are taken at ``T = 1``.

The paper's eight checkpoints are listed in :data:`PAPER_MODELS`; ``Policy.from_pretrained``
takes any of them (or any other causal LM) by hub name or local folder. torch and transformers
are imported lazily, so ``import crlhf.policy`` is cheap.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .tasks.base import HUMANEVAL_STOP

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PAPER_MODELS", "PaperModel", "ModelUnavailableError", "Completion", "Policy", "default_device",
           "add_lora", "hf_progress_bars_off"]


@dataclass(frozen=True)
class PaperModel:
    """One checkpoint of the paper: display name, size, and architecture family (``model_type``)."""

    name: str
    size: str
    family: str


PAPER_MODELS: dict[str, PaperModel] = {
    "NinedayWang/PolyCoder-0.4B": PaperModel("PolyCoder", "0.4B", "gpt_neox"),
    "NinedayWang/PolyCoder-2.7B": PaperModel("PolyCoder", "2.7B", "gpt_neox"),
    "Salesforce/codegen-350M-multi": PaperModel("CodeGen-multi", "350M", "codegen"),
    "Salesforce/codegen-2B-multi": PaperModel("CodeGen-multi", "2B", "codegen"),
    "codeparrot/codeparrot-small": PaperModel("CodeParrot", "110M", "gpt2"),
    "codeparrot/codeparrot": PaperModel("CodeParrot", "1.5B", "gpt2"),
    "EleutherAI/gpt-neo-1.3B": PaperModel("GPT-Neo", "1.3B", "gpt_neo"),
    "EleutherAI/gpt-neo-2.7B": PaperModel("GPT-Neo", "2.7B", "gpt_neo"),
}
"""The eight checkpoints evaluated in the paper, by Hugging Face Hub name."""


class ModelUnavailableError(OSError):
    """The weights are neither in a local folder nor downloadable (e.g. offline)."""


@dataclass
class Completion:
    """One sampled completion.

    ``text``: the completion, cut at the first stop sequence. ``token_ids``: the response tokens
    kept (1-D LongTensor; they decode to a string that starts with ``text``, see
    :meth:`Policy.sample`). ``logprobs``: per-token ``log_softmax(logits / T)`` of those tokens
    (1-D float32 tensor, same length). ``prompt_ids``: the prompt's tokens, unpadded.
    ``finished``: a stop sequence or the end-of-sequence token was reached (not the length limit).
    """

    text: str
    token_ids: torch.Tensor
    logprobs: torch.Tensor
    prompt_ids: torch.Tensor
    finished: bool


def default_device() -> torch.device:
    """CUDA if present, then Apple MPS, then CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _default_dtype(device: torch.device) -> torch.dtype:
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _unavailable(name: str, exc: Exception) -> ModelUnavailableError:
    known = PAPER_MODELS.get(name)
    what = f"{known.name} {known.size} ({name})" if known else repr(name)
    return ModelUnavailableError(
        f"cannot load {what}: it is not a local folder and could not be downloaded from the "
        f"Hugging Face Hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
        f"On a machine with network run `hf download {name}` (or `huggingface-cli download {name}`) "
        f"and pass the downloaded folder, or point HF_HOME at a cache that holds it "
        f"(HF_HUB_OFFLINE=1 skips the network retries)."
    )


class _LogprobRecorder:
    """Logits processor that applies the temperature and records the chosen tokens' log-probs.

    Called at every decoding step with the raw float32 logits (it runs before transformers'
    warpers, and no warper is active). The token picked at step t is only visible at step t+1
    (as ``input_ids[:, -1]``), so the previous step's log-softmax is kept and gathered then; the
    last step's is gathered by :meth:`result`.
    """

    def __init__(self, temperature: float):
        self.inv_t = 1.0 / temperature if temperature > 0 else 1.0
        self.prev: torch.Tensor | None = None
        self.picked: list = []

    def __call__(self, input_ids, scores):
        import torch

        if self.prev is not None:
            self.picked.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        scores = scores * self.inv_t if self.inv_t != 1.0 else scores
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def result(self, generated):
        """Log-probs ``(batch, G)`` of the ``generated`` tokens ``(batch, G)``."""
        import torch

        g = generated.shape[1]
        picked = self.picked[:g]
        if len(picked) < g and self.prev is not None:  # the last step's token is not gathered yet
            picked.append(self.prev.gather(1, generated[:, len(picked):len(picked) + 1]).squeeze(1))
        if len(picked) != g:
            raise RuntimeError(f"recorded {len(picked)} log-probs for {g} generated tokens")
        return torch.stack(picked, dim=1) if picked else generated.new_zeros(generated.shape, dtype=torch.float32)


class _StopOnSubstrings:
    """Stopping criterion: a row is done once its *generated* text contains a stop sequence.

    Only the completion is searched (transformers' ``stop_strings`` also matches across the
    prompt boundary), in a window of the last tokens long enough to hold any stop sequence.
    """

    def __init__(self, tokenizer, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, tuple(stop), prompt_len
        self.window = max(len(s) for s in self.stop) + 4

    def __call__(self, input_ids, scores=None, **kwargs):
        import torch

        tail = input_ids[:, max(self.prompt_len, input_ids.shape[1] - self.window):].tolist()
        texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        done = [any(s in t for s in self.stop) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@contextlib.contextmanager
def _plain_generation_config(model):
    """Hide the checkpoint's generation defaults (penalties, top-k ...): generate() fills every
    option left unset from ``model.generation_config``."""
    from transformers import GenerationConfig

    if callable(getattr(model, "get_base_model", None)):  # PEFT: generate() reads the base model's
        model = model.get_base_model()
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


@contextlib.contextmanager
def hf_progress_bars_off():
    """Hide transformers' own progress bars (``Loading weights``, ``Writing model shards``) in
    the block, for loads and saves of local checkpoints that take milliseconds; the previous
    setting (and the Hub's download bars) is restored after it."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    was_on, hub_was_off = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
            if hub_was_off:
                disable_progress_bars()


class _DroppedMaskWarning:
    """Logging filter for transformers' "We strongly recommend passing in an `attention_mask`"
    during ``generate``: we always pass the mask, but ``generate`` drops a mask of all ones (no
    prompt is padded) and then sees the pad tokens it appends to finished rows."""

    def filter(self, record) -> bool:
        return "passing in an `attention_mask`" not in record.getMessage()


@contextlib.contextmanager
def _no_dropped_mask_warning():
    import logging

    logger, flt = logging.getLogger("transformers.modeling_utils"), _DroppedMaskWarning()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def peft_quiet():
    """Hide the FutureWarning PEFT triggers by reading a transformers 5.x property it has not
    caught up with (``is_gradient_checkpointing``); nothing else is hidden."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def add_lora(model, r: int = 16, alpha: float = 32.0, dropout: float = 0.05,
             target_modules: Sequence[str] | None = None):
    """``model`` with a fresh LoRA adapter (Hu et al. 2021; PEFT ``get_peft_model``): only the
    adapter's weights train, and with the adapter disabled the model is the base unchanged (the
    KL reference of :class:`crlhf.ppo.PPOTrainer`). ``target_modules=None``: PEFT's choice for
    the architecture (the attention projections). The adapter starts at zero (``B = 0``), so the
    new model computes what the base does."""
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    for name, value, low in (("r", r, 1), ("alpha", alpha, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low - (name == "r"):
            raise ValueError(f"lora {name} must be a number > {low - (name == 'r')}, got {value!r}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"lora dropout must be in [0, 1), got {dropout!r}")
    # peft annotates lora_alpha as int, but it only divides by r: a float alpha works
    config = LoraConfig(task_type="CAUSAL_LM", r=int(r), lora_alpha=float(alpha),  # type: ignore[arg-type]
                        lora_dropout=float(dropout),
                        target_modules=list(target_modules) if target_modules else None,
                        # GPT-2-style Conv1D layers store their weight transposed
                        fan_in_fan_out=any(isinstance(m, Conv1D) for m in model.modules()))
    try:
        with peft_quiet():
            return get_peft_model(model, config)
    except ValueError as exc:
        raise ValueError(f"lora target_modules: {exc}") from None


class Policy:
    """A causal language model with its tokenizer, ready to sample completions.

    ``device=None`` keeps the model where it is; pass a device to move it. The tokenizer is set
    to pad on the left, with the end-of-sequence token as padding if it has no pad token.
    """

    def __init__(self, model, tokenizer, device=None):
        import torch

        if getattr(model, "generate", None) is None:
            raise TypeError(f"model must be a transformers generation model, got {type(model).__name__}")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError("the tokenizer has neither a pad_token nor an eos_token; set one of them")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device=None, dtype=None, **model_kwargs) -> Policy:
        """Load any ``AutoModelForCausalLM`` and its tokenizer from a hub name or a local folder.

        ``device``: default CUDA, then MPS, then CPU. ``dtype``: default bfloat16 on GPUs that
        support it, float32 otherwise (a ``torch.dtype`` or its name). Raises
        :class:`ModelUnavailableError` when the weights are neither local nor downloadable.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = str(name_or_path)
        device = torch.device(device) if device is not None else default_device()
        if dtype is None:
            dtype = _default_dtype(device)
        elif isinstance(dtype, str) and dtype != "auto":
            if not isinstance(getattr(torch, dtype, None), torch.dtype):
                raise ValueError(f"dtype must be a torch dtype or its name (e.g. 'bfloat16'), got {dtype!r}")
            dtype = getattr(torch, dtype)
        local = Path(name).expanduser()
        if local.exists() and not local.is_dir():
            raise ValueError(f"{name!r} is a file; pass the folder that holds config.json and the weights")
        if not local.exists() and (local.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1):
            raise FileNotFoundError(f"no model folder {name!r} (and it is not a Hub name such as "
                                    f"{next(iter(PAPER_MODELS))!r})")
        name = str(local) if local.exists() else name
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **model_kwargs)
        except OSError as exc:
            if local.is_dir():
                raise OSError(f"cannot load a causal LM from the folder {name!r}: {exc}") from exc
            raise _unavailable(name, exc) from exc
        except ValueError as exc:  # invalid repo ids (HFValidationError) and unknown architectures
            if local.is_dir() or "Unrecognized" in str(exc):
                raise
            raise _unavailable(name, exc) from exc
        model.eval()
        return cls(model, tokenizer, device=device)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the model (safetensors) and the tokenizer to the folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with hf_progress_bars_off():
            self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        return path

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return f"Policy({name!r}, {n / 1e6:.1f}M parameters, device={self.device}, dtype={self.model.dtype})"

    # ------------------------------------------------------------------ helpers
    @property
    def max_positions(self) -> int | None:
        """The longest sequence the model's position embeddings allow (``None`` if unbounded)."""
        cfg = self.model.config
        for key in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _eos_ids(self) -> list[int]:
        ids = set()
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, (list, tuple)):
                ids.update(int(i) for i in source)
        return sorted(ids)

    def _encode(self, prompts: Sequence[str]) -> list[list[int]]:
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise TypeError("prompts must be a list of str")
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        encoded = self.tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
        return [ids if ids else [start] for ids in encoded]  # an empty prompt starts from BOS

    def auto_batch_size(self, prompt_len: int, max_new_tokens: int) -> int:
        """Rows per ``generate`` call: from free memory on CUDA, 16 elsewhere.

        The estimate per row counts the KV cache (twice, for the copies a growing cache makes),
        the prompt's activations and a few vocabulary-sized float32 rows; half of the free
        memory is used.
        """
        import torch

        if self.device.type != "cuda":
            return 16
        cfg = self.model.config
        layers = getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layer", 12)
        hidden = getattr(cfg, "hidden_size", 0) or getattr(cfg, "n_embd", 1024)
        vocab = getattr(cfg, "vocab_size", 50000)
        elem = torch.finfo(self.model.dtype).bits // 8
        seq = prompt_len + max_new_tokens
        per_row = (2 * 2 * layers * hidden * seq * elem + prompt_len * hidden * 12 * elem + 8 * vocab * 4)
        free, _ = torch.cuda.mem_get_info(self.device)
        free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return int(max(1, min(1024, free * 0.5 // per_row)))

    # ------------------------------------------------------------------ sampling
    def sample(self, prompts: Sequence[str], n: int = 1, temperature: float = 1.0, max_new_tokens: int = 128,
               stop: Sequence[str] | None = HUMANEVAL_STOP, seed: int | None = None, batch_size: int | None = None,
               progress: bool | None = None, cache_implementation: str | None = None) -> list[list[Completion]]:
        """``n`` completions for each prompt (a list of ``n`` :class:`Completion` per prompt).

        Rows (prompt x sample) are grouped by prompt length into batches of ``batch_size``
        (default :meth:`auto_batch_size`; halved and retried on CUDA out-of-memory) and decoded
        with the KV cache by ``model.generate``; ``cache_implementation="static"`` selects a
        static (compilable) cache. A row stops at the end-of-sequence token or once its
        completion contains a stop sequence; the text is cut at the first stop. The kept tokens
        are the shortest prefix of the generated ones that decodes past the cut: the text and
        the first token that enters the stop sequence (the sampled action that ended the
        program, as an end-of-sequence token is; a token straddling the cut, e.g. ``"\\n\\n"``
        before ``"def"``, is that token). After an end-of-sequence token (no stop) the kept
        tokens end with it. So a finished completion always keeps at least one token, and every
        kept token was sampled.

        ``seed`` makes the result reproducible for a given batch size and device (the global RNG
        is left untouched); without it the global torch RNG is used. ``progress=None`` shows a
        bar when more than one batch is needed.
        """
        import torch
        from tqdm.auto import tqdm
        from transformers import GenerationConfig

        n, max_new_tokens = int(n), int(max_new_tokens)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        temperature = float(temperature)
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        stop = tuple(stop or ())
        if any(not isinstance(s, str) or not s for s in stop):
            raise ValueError(f"stop must be non-empty strings, got {stop!r}")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        encoded = self._encode(prompts)
        limit = self.max_positions
        for i, ids in enumerate(encoded):
            if limit is not None and len(ids) + max_new_tokens > limit:
                raise ValueError(f"prompt {i} has {len(ids)} tokens; with max_new_tokens={max_new_tokens} that "
                                 f"exceeds the model's {limit} positions")
        rows = sorted(((pi, si) for pi in range(len(encoded)) for si in range(n)),
                      key=lambda r: -len(encoded[r[0]]))
        out: list[list[Completion | None]] = [[None] * n for _ in encoded]
        if not rows:
            return []
        if batch_size is None:
            batch_size = self.auto_batch_size(len(encoded[rows[0][0]]), max_new_tokens)
        batch_size = min(int(batch_size), len(rows))
        eos_ids = self._eos_ids()  # before the checkpoint's generation config is hidden
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=temperature > 0, temperature=1.0, top_k=0, top_p=1.0,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=eos_ids or None,
            bos_token_id=self.tokenizer.bos_token_id, cache_implementation=cache_implementation,
        )
        show = len(rows) > batch_size if progress is None else bool(progress)
        devices = [self.device] if self.device.type == "cuda" else []
        with contextlib.ExitStack() as stack:
            stack.enter_context(_eval_mode(self.model))
            stack.enter_context(_plain_generation_config(self.model))
            stack.enter_context(_no_dropped_mask_warning())
            stack.enter_context(torch.no_grad())
            if seed is not None:
                stack.enter_context(torch.random.fork_rng(devices=devices))
                torch.manual_seed(int(seed))
            bar = stack.enter_context(tqdm(total=len(rows), desc="sampling", unit="sample", disable=not show))
            start = 0
            while start < len(rows):
                chunk = rows[start:start + batch_size]
                try:
                    done = self._generate_batch([encoded[pi] for pi, _ in chunk], temperature, stop, eos_ids, config)
                except torch.OutOfMemoryError:
                    if batch_size == 1:
                        raise
                    batch_size = max(1, batch_size // 2)
                    torch.cuda.empty_cache()
                    bar.set_postfix(batch_size=batch_size)
                    continue
                for (pi, si), completion in zip(chunk, done, strict=True):
                    out[pi][si] = completion
                start += len(chunk)
                bar.update(len(chunk))
        return out  # type: ignore[return-value]

    def _generate_batch(self, prompt_ids: list[list[int]], temperature: float, stop: tuple[str, ...],
                        eos_ids: list[int], config) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompt_ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=self.device)
        recorder = _LogprobRecorder(temperature)
        criteria = StoppingCriteriaList([_StopOnSubstrings(self.tokenizer, stop, width)] if stop else [])
        sequences = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                        logits_processor=LogitsProcessorList([recorder]),
                                        stopping_criteria=criteria)
        generated = sequences[:, width:]
        logprobs = recorder.result(generated).float().cpu()
        generated = generated.cpu()
        return [self._finish(prompt, generated[i].tolist(), logprobs[i], stop, eos_ids)
                for i, prompt in enumerate(prompt_ids)]

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _finish(self, prompt: list[int], gen: list[int], logprobs, stop, eos_ids) -> Completion:
        import torch

        eos = set(eos_ids)
        end = next((i for i, t in enumerate(gen) if t in eos), len(gen))
        full = self._decode(gen[:end])
        cuts = [i for i in (full.find(s) for s in stop) if i != -1]
        if cuts:
            text = full[:min(cuts)]
            keep, finished = self._prefix_for(gen[:end], text), True
            if len(self._decode(gen[:keep])) <= len(text):  # no token entered the stop yet
                keep += 1
        elif end < len(gen):
            text, keep, finished = full, end + 1, True
        else:
            text, keep, finished = full, len(gen), False
        return Completion(text=text, token_ids=torch.tensor(gen[:keep], dtype=torch.long),
                          logprobs=logprobs[:keep].clone(), prompt_ids=torch.tensor(prompt, dtype=torch.long),
                          finished=finished)

    def _prefix_for(self, gen: list[int], text: str) -> int:
        """Length of the shortest prefix of ``gen`` that decodes to a string starting with ``text``."""
        lo, hi = 0, len(gen)  # decode(gen[:hi]) starts with text
        while lo < hi:
            mid = (lo + hi) // 2
            if self._decode(gen[:mid]).startswith(text):
                hi = mid
            else:
                lo = mid + 1
        if self._decode(gen[:lo]).startswith(text) and (lo == 0 or not self._decode(gen[:lo - 1]).startswith(text)):
            return lo
        # decoding was not prefix-monotone here (split multi-byte characters): scan
        return next(j for j in range(len(gen) + 1) if self._decode(gen[:j]).startswith(text))

    # ------------------------------------------------------------------ scoring
    def logprobs(self, prompt_ids: Sequence, response_ids: Sequence, temperature: float = 1.0,
                 batch_size: int = 16) -> list[torch.Tensor]:
        """Per-token ``log_softmax(logits / T)`` of each response given its prompt (no gradient).

        ``prompt_ids``/``response_ids``: lists of 1-D token sequences (tensors or lists); one
        float32 CPU tensor per response is returned. ``T = 0`` scores at ``T = 1`` as sampling does.
        """
        import torch

        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        inv_t = 1.0 / temperature if temperature > 0 else 1.0
        pairs = [(torch.as_tensor(p, dtype=torch.long).view(-1).tolist(),
                  torch.as_tensor(r, dtype=torch.long).view(-1).tolist())
                 for p, r in zip(prompt_ids, response_ids, strict=True)]
        for i, (p, _) in enumerate(pairs):
            if not p:
                raise ValueError(f"prompt {i} is empty: scoring needs at least one prompt token")
        out = []
        pad = self.tokenizer.pad_token_id
        with _eval_mode(self.model), torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start:start + batch_size]
                width = max(len(p) + len(r) for p, r in chunk)
                ids = torch.tensor([p + r + [pad] * (width - len(p) - len(r)) for p, r in chunk], device=self.device)
                mask = torch.tensor([[1] * (len(p) + len(r)) + [0] * (width - len(p) - len(r)) for p, r in chunk],
                                    device=self.device)
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                for row, (p, r) in enumerate(chunk):
                    if not r:
                        out.append(torch.zeros(0))
                        continue
                    lg = logits[row, len(p) - 1:len(p) + len(r) - 1].float() * inv_t
                    target = torch.tensor(r, device=lg.device).unsqueeze(1)
                    out.append(torch.log_softmax(lg, dim=-1).gather(1, target).squeeze(1).cpu())
        return out

    # ------------------------------------------------------------------ evaluation adapter
    def as_sampler(self, max_new_tokens: int = 128, stop: Sequence[str] | None = None, seed: int | None = 0,
                   **sample_kwargs: Any) -> Callable[[list[str], int, float], list[list[str]]]:
        """A ``(prompts, n, temperature) -> completions`` callable for :func:`crlhf.evaluate.evaluate`.

        ``stop`` defaults to HumanEval's stop sequences; other keywords go to :meth:`sample`.
        """
        stop = HUMANEVAL_STOP if stop is None else tuple(stop)

        def sampler(prompts: list[str], n: int, temperature: float) -> list[list[str]]:
            result = self.sample(list(prompts), n=n, temperature=temperature, max_new_tokens=max_new_tokens,
                                 stop=stop, seed=seed, **sample_kwargs)
            return [[c.text for c in row] for row in result]

        return sampler
