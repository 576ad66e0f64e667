"""The TOML config of ``crlhf train`` (:mod:`crlhf.train_cmd`): the settings dataclasses,
:class:`TrainConfig`, and :func:`load_config`/:func:`parse_config`, which type-check every key.

Top-level keys ``out``, ``seeds`` (a list of ints; each seed sets the loop's, the crowd's,
PPO's and the evaluations' seeds) and ``db``, then tables; every key is checked (unknown keys
and wrong types are errors naming the file, the table and the key):

* ``[model]`` ``name`` (``tiny``, a folder, or a hub name such as
  ``Salesforce/codegen-350M-mono``), ``device``, ``dtype``;
* ``[sft]`` the arguments of :func:`crlhf.sft.sft` (``data``, ``epochs``, ``lr``, ``max_steps``, ...);
* ``[eval]`` the options of ``crlhf eval`` (:class:`crlhf.eval_run.EvalConfig`) except
  ``model``/``out``/``seed``/``device``/``dtype``;
* ``[prompts]`` the tasks PPO trains on: ``tasks = "minicode"`` (minicode test-split tasks
  disjoint from the evaluated ones, as ``crlhf demo``) or ``"mbpp"`` (MBPP's train split, from
  ``mbpp`` or ``[eval] mbpp``), and ``limit``;
* ``[loop]`` :class:`crlhf.loop.LoopConfig` (except ``seed``, ``crowd_seed``, ``run_dir``);
* ``[ppo]`` :class:`crlhf.ppo.PPOConfig` (except ``seed``, and ``temperature``: the loop's);
* ``[crowd_model]`` the :class:`crlhf.crowd.CrowdModel` settings (``reliability``, ``tau``, ...;
  the table was ``[crowd]``, which still works with a warning);
* ``[lora]`` ``enabled``, ``r``, ``alpha``, ``dropout``, ``target_modules``: train a LoRA
  adapter (PEFT) instead of every weight; PPO's KL reference is then the same base with the
  adapter disabled, so no second copy of the weights is held (the paper's 2.7B models in bf16
  fit one 24 GB card). SFT, when asked for, still trains every weight.

``"none"`` sets a setting that may be None (``[loop] labels_per_program = "none"``). Paths are
taken relative to the working directory, as the other commands' options are.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ._deprecation import renamed_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "ModelSettings", "SFTSettings", "PromptSettings", "LoraSettings", "TrainConfig",
           "parse_config", "load_config"]

PROMPT_SETS = ("minicode", "mbpp")
DEFAULT_MINICODE_PROMPTS = 64


class ConfigError(ValueError):
    """A bad config file; the message names the file, the table and the key."""


@dataclass
class ModelSettings:
    """``[model]``: the starting model and where it runs."""

    name: str = "tiny"
    device: str | None = None
    dtype: str | None = None


@dataclass
class SFTSettings:
    """``[sft]``: :func:`crlhf.sft.sft`'s arguments; no ``data``, no SFT."""

    data: str | None = None
    epochs: float = 3.0
    lr: float = 5e-5
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup: float = 0.0
    weight_decay: float = 0.0
    split: str = "train"
    language: str = "Python"
    limit: int | None = None
    eval_data: str | None = None
    seed: int = 0
    logging_steps: int = 10
    checkpointing: bool = True


@dataclass
class PromptSettings:
    """``[prompts]``: the tasks PPO trains on (``limit``: minicode 64 by default, MBPP all)."""

    tasks: str = "minicode"
    limit: int | None = None
    mbpp: str | None = None


@dataclass
class LoraSettings:
    """``[lora]``: a LoRA adapter (:func:`crlhf.policy.add_lora`)."""

    enabled: bool = False
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] | None = None


@dataclass
class TrainConfig:
    """Everything ``crlhf train`` runs with (see the module docstring). ``eval``, ``loop``,
    ``ppo`` and ``crowd_model`` hold the keyword arguments of ``EvalConfig``, ``LoopConfig``,
    ``PPOConfig`` and ``CrowdModel`` that the file set (checked); ``source`` is the file."""

    out: str
    seeds: tuple[int, ...] = (0,)
    db: str | None = None
    model: ModelSettings = field(default_factory=ModelSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    eval: dict = field(default_factory=dict)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    loop: dict = field(default_factory=dict)
    ppo: dict = field(default_factory=dict)
    crowd_model: dict = field(default_factory=dict)
    lora: LoraSettings = field(default_factory=LoraSettings)
    source: str = ""

    def eval_config(self, model: str, out: Path, seed: int):
        """The ``crlhf eval`` settings of one evaluation."""
        from .eval_run import EvalConfig

        return EvalConfig(model=model, out=str(out), seed=seed, device=self.model.device, dtype=self.model.dtype,
                          **self.eval)

    def loop_config(self, seed: int, run_dir: Path | None):
        """The :class:`crlhf.loop.LoopConfig` of one seed."""
        from .loop import LoopConfig
        from .ppo import PPOConfig

        loop = dict(self.loop)
        if self.db is not None:
            loop["crowd"] = "store"
        return LoopConfig(**loop, seed=seed, crowd_seed=seed, crowd_model=dict(self.crowd_model),
                          ppo=PPOConfig(**self.ppo, seed=seed), run_dir=None if run_dir is None else str(run_dir))

    def to_dict(self) -> dict:
        """Every setting, defaults filled in (what ``config.json`` holds)."""
        from .crowd import CrowdModel

        loop = self.loop_config(self.seeds[0], None).to_dict()
        ppo = loop.pop("ppo")
        for key in ("seed", "crowd_seed", "run_dir", "crowd_model"):
            loop.pop(key)
        ppo.pop("seed")
        ppo.pop("temperature")
        evaluation = asdict(self.eval_config(self.model.name, Path("."), self.seeds[0]))
        for key in ("model", "out", "seed", "device", "dtype", "dropped_ks"):
            evaluation.pop(key)
        defaults = {k: p.default for k, p in inspect.signature(CrowdModel).parameters.items()}
        return {"out": self.out, "seeds": list(self.seeds), "db": self.db, "model": asdict(self.model),
                "sft": asdict(self.sft), "eval": _plain(evaluation), "prompts": asdict(self.prompts),
                "loop": loop, "ppo": _plain(ppo), "crowd_model": {**defaults, **self.crowd_model},
                "lora": asdict(self.lora)}


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ---------------------------------------------------------------------------------------------- the file
SECTION_TYPES = {"model": ModelSettings, "sft": SFTSettings, "prompts": PromptSettings, "lora": LoraSettings}
TOP_KEYS = {"out": str | None, "seeds": list[int], "db": str | None}
SET_ELSEWHERE = {
    ("eval", "model"): "the evaluated model is [model] name (then the trained policy)",
    ("eval", "out"): "evaluations go to the run folder",
    ("eval", "seed"): "set by the top-level `seeds` list",
    ("eval", "device"): "set by [model] device", ("eval", "dtype"): "set by [model] dtype",
    ("eval", "dropped_ks"): "not a setting",
    ("loop", "seed"): "set by the top-level `seeds` list", ("loop", "crowd_seed"): "set by the top-level `seeds` list",
    ("loop", "run_dir"): "the rounds go to the run folder", ("loop", "ppo"): "use the [ppo] table",
    ("loop", "crowd_model"): "use the [crowd_model] table",
    ("ppo", "seed"): "set by the top-level `seeds` list",
    ("ppo", "temperature"): "PPO scores tokens at the sampling temperature, [loop] temperature",
}


def _hints(table: str) -> dict:
    """Key -> type hint of a table's settings."""
    from .crowd import CrowdModel
    from .eval_run import EvalConfig
    from .loop import LoopConfig
    from .ppo import PPOConfig

    if table in SECTION_TYPES:
        return typing.get_type_hints(SECTION_TYPES[table])
    if table == "crowd_model":
        hints = typing.get_type_hints(CrowdModel.__init__)
        return {k: hints.get(k, type(p.default)) for k, p in inspect.signature(CrowdModel).parameters.items()}
    cls = {"eval": EvalConfig, "loop": LoopConfig, "ppo": PPOConfig}[table]
    hints = typing.get_type_hints(cls, localns={"PPOConfig": PPOConfig})  # loop.py names it for type checkers only
    hints = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    if table == "eval":  # a comma-separated string is accepted by EvalConfig too, but TOML has lists
        hints.update(tasks=list[str], temperatures=list[float], ks=list[int])
    return hints


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_describe(a) for a in inner)
        return text + (' or "none"' if type(None) in args else "")
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is dict or origin is dict:
        return "a table"
    if origin in (list, tuple) or hint in (list, tuple):
        if not args:
            return "a list"
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
        if origin is tuple and args[-1] is not Ellipsis:
            kinds = set(args)
            if len(kinds) == 1:
                return f"a list of {len(args)} {plural.get(args[0], 'values')}"
            return f"a list of {len(args)} values (" + ", ".join(_describe(a) for a in args) + ")"
        return f"a list of {plural.get(args[0], 'values')}"
    return getattr(hint, "__name__", str(hint))


class _Mismatch(Exception):
    pass


def _conform(value, hint):
    """``value`` as ``hint`` asks (TOML lists become tuples where a tuple is wanted); raises
    :class:`_Mismatch` when it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is object or hint is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value == "none" and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _conform(value, a)
            except _Mismatch:
                pass
        raise _Mismatch
    if hint is type(None):
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if hint is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise _Mismatch
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, list):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch
            items = [_conform(v, a) for v, a in zip(value, args, strict=True)]
        elif args:
            items = [_conform(v, args[0]) for v in value]
        else:
            items = list(value)
        return tuple(items) if (hint is tuple or origin is tuple) else items
    return value


def _check_table(path: str, table: str, data, hints: dict) -> dict:
    where = f"{path}: [{table}]" if table else f"{path}:"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table ([{table}] header), got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        if (table, key) in SET_ELSEWHERE:
            raise ConfigError(f"{where} {key}: not settable here: {SET_ELSEWHERE[(table, key)]}")
        if key not in hints:
            raise ConfigError(f"{where} unknown key {key!r}; known keys: {', '.join(sorted(hints))}")
        try:
            out[key] = _conform(value, hints[key])
        except _Mismatch:
            raise ConfigError(f"{where} {key}: expected {_describe(hints[key])}, got {value!r}") from None
    return out


def _option_names(message: str) -> str:
    """``--max-new-tokens`` (how ``crlhf eval`` names its options) as the TOML key ``max_new_tokens``."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), message)


def _renamed(data: dict, path: str) -> dict:
    """The file with its old names under the new ones (a FutureWarning each, which the command line shows)."""
    data = renamed_keys(data, {"crowd": "crowd_model"}, f"{path}: table", FutureWarning)
    if isinstance(data.get("ppo"), dict):
        data["ppo"] = renamed_keys(data["ppo"], {"lam": "gae_lambda"}, f"{path}: [ppo]", FutureWarning)
    return data


def parse_config(text: str, path: str = "<config>", out: str | None = None, db: str | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from TOML text; ``out``/``db`` override the file's. Raises
    :class:`ConfigError` naming ``path``, the table and the key at fault."""
    from .crowd import CrowdModel
    from .ppo import PPOConfig

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        data = _renamed(data, path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    tables = set(SECTION_TYPES) | {"eval", "loop", "ppo", "crowd_model"}
    top = {k: v for k, v in data.items() if k not in tables}
    for key, value in top.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: unknown table [{key}]; known tables: "
                              + ", ".join(f"[{t}]" for t in sorted(tables)))
    top = _check_table(path, "", top, TOP_KEYS)
    kwargs = {name: _check_table(path, name, data.get(name, {}), _hints(name)) for name in sorted(tables)}
    seeds = top.get("seeds", [0])
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"{path}: seeds: expected a non-empty list of distinct integers >= 0, got {seeds!r}")
    out = out if out is not None else top.get("out") or str(Path("runs") / "train" / Path(path).stem)
    db = db if db is not None else top.get("db")
    sections = {}
    for name, cls in SECTION_TYPES.items():
        sections[name] = cls(**kwargs[name])
    cfg = TrainConfig(out=str(out), seeds=tuple(seeds), db=db, eval=kwargs["eval"], loop=kwargs["loop"],
                      ppo=kwargs["ppo"], crowd_model=kwargs["crowd_model"], source=str(path), **sections)
    # the objects' own checks, named by table
    for table, make in (("ppo", lambda: PPOConfig(**cfg.ppo)), ("crowd_model", lambda: CrowdModel(**cfg.crowd_model)),
                        ("loop", lambda: cfg.loop_config(seeds[0], None)),
                        ("eval", lambda: cfg.eval_config(cfg.model.name, Path("."), seeds[0]))):
        try:
            make()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: [{table}] {_option_names(str(exc))}") from None
    from .eval_run import check_model_and_tasks

    try:
        check_model_and_tasks(cfg.model.name, ("minicode",))
    except ValueError as exc:
        raise ConfigError(f"{path}: [model] name: {_option_names(str(exc))}") from None
    if cfg.prompts.tasks not in PROMPT_SETS:
        raise ConfigError(f"{path}: [prompts] tasks: expected one of {', '.join(PROMPT_SETS)} (tasks with tests "
                          f"that the evaluation does not use), got {cfg.prompts.tasks!r}")
    if cfg.prompts.limit is not None and cfg.prompts.limit < 1:
        raise ConfigError(f"{path}: [prompts] limit: expected an integer >= 1, got {cfg.prompts.limit!r}")
    if cfg.loop.get("crowd") == "store" and cfg.db is None:
        raise ConfigError(f"{path}: [loop] crowd = 'store' needs a label store: set db = PATH_OR_URL or pass --db")
    if cfg.sft.data is not None and not Path(cfg.sft.data).expanduser().exists():
        raise ConfigError(f"{path}: [sft] data: no file or folder {cfg.sft.data!r}")
    lora = cfg.lora
    if lora.r < 1 or lora.alpha <= 0 or not 0 <= lora.dropout < 1:
        raise ConfigError(f"{path}: [lora] needs r >= 1, alpha > 0 and 0 <= dropout < 1, got r={lora.r}, "
                          f"alpha={lora.alpha}, dropout={lora.dropout}")
    return cfg


def load_config(path: str | os.PathLike, out: str | None = None, db: str | None = None) -> TrainConfig:
    """:func:`parse_config` of the file ``path``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{path}: no such config file")
    return parse_config(p.read_text(encoding="utf-8"), str(path), out=out, db=db)
