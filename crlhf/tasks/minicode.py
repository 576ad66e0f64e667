"""minicode: the kit's own generated family of small Python function tasks (DESIGN.md §3).

A task is a one-sentence docstring prompt under a signature (HumanEval-like), a reference
body of 4-7 regular lines, and ``check(candidate)`` with five asserts. Fifteen kinds
(counting, filtering, summing, any/all, first index, sums over ranges and index patterns,
digits, min/max, maps, adjacent pairs, string counting/removal/replacement) are built from
*variants* (the condition or operation: ``x > 3``, ``x % 4 == 0``, ``ch.isdigit()`` ...),
*parameters* (thresholds, moduli, characters), *wordings* (three sentence templates per kind,
synonyms for each condition) and names.

Split rule (held-out combinations, so a model must generalise; see ``held_out()``): each kind
holds out its third wording template, one parameter value (e.g. counting with the constant
7; not minmax/adjacent, which have none) and one variant (not minmax/map). For the eleven
kinds built on shared conditions the held-out variant is one that other kinds still show
(counting numbers *not divisible* by m, while filtering and summing them is in train);
index_sum's odd indices and adjacent's equal neighbours combine words and code seen
elsewhere. ``train`` tasks contain none of these; every ``test`` task contains at least one
(its kind's variant, wording or parameter, drawn evenly), named in ``metadata["held_out"]``.

Deterministic: task ``i`` of a split depends only on ``(seed, split, i)``, so a longer list
extends a shorter one. Expected outputs come from hand-written Python functions below; the
reference programs are text and are checked against them in the sandbox by the tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from .base import HUMANEVAL_STOP, Task

__all__ = ["HOLDOUTS", "Variant", "Kind", "KINDS", "kinds", "held_out", "Spec", "sample_spec", "render", "PITFALLS",
           "near_misses", "make_cases", "check_code", "make_task", "load_minicode"]

SPLITS = ("train", "test")
HOLDOUTS = ("variant", "wording", "param")


@dataclass(frozen=True)
class Variant:
    """A condition or operation: code template (``{v}`` value, ``{p}`` parameter), phrases, semantics."""

    code: str
    phrases: tuple[str, ...]
    params: tuple = (None,)
    fn: Callable[[Any, Any], Any] | None = None


def _ints(lo, hi):
    return tuple(range(lo, hi + 1))


INT_CONDITIONS = {
    "gt": Variant("{v} > {p}", ("greater than {p}", "larger than {p}", "above {p}"), _ints(0, 9), lambda v, p: v > p),
    "lt": Variant("{v} < {p}", ("less than {p}", "smaller than {p}", "below {p}"), _ints(1, 9), lambda v, p: v < p),
    "ge": Variant("{v} >= {p}", ("at least {p}", "greater than or equal to {p}"), _ints(1, 9), lambda v, p: v >= p),
    "eq": Variant("{v} == {p}", ("equal to {p}",), _ints(0, 9), lambda v, p: v == p),
    "even": Variant("{v} % 2 == 0", ("even",), (None,), lambda v, p: v % 2 == 0),
    "odd": Variant("{v} % 2 == 1", ("odd",), (None,), lambda v, p: v % 2 == 1),
    "div": Variant("{v} % {p} == 0", ("divisible by {p}", "a multiple of {p}"), _ints(3, 7), lambda v, p: v % p == 0),
    "ndiv": Variant("{v} % {p} != 0", ("not divisible by {p}",), _ints(3, 7), lambda v, p: v % p != 0),
}

CHAR_CONDITIONS = {
    "char": Variant("{v} == {p}", ("occurrences of {p}", "copies of {p}"), tuple("aeostxz"), lambda v, p: v == p),
    "vowel": Variant("{v} in 'aeiou'", ("vowels", "lowercase vowels"), (None,), lambda v, p: v in "aeiou"),
    "digit": Variant("{v}.isdigit()", ("digits", "digit characters"), (None,), lambda v, p: v.isdigit()),
    "upper": Variant("{v}.isupper()", ("uppercase letters", "capital letters"), (None,), lambda v, p: v.isupper()),
    "space": Variant("{v} == ' '", ("spaces", "blanks"), (None,), lambda v, p: v == " "),
}

MAP_OPS = {
    "add": Variant("{v} + {p}", ("increased by {p}", "with {p} added"), _ints(1, 9), lambda v, p: v + p),
    "sub": Variant("{v} - {p}", ("decreased by {p}", "with {p} subtracted"), _ints(1, 9), lambda v, p: v - p),
    "mul": Variant("{v} * {p}", ("multiplied by {p}", "scaled by {p}"), _ints(2, 9), lambda v, p: v * p),
    "mod": Variant("{v} % {p}", ("taken modulo {p}", "reduced modulo {p}"), _ints(2, 9), lambda v, p: v % p),
    "fdiv": Variant("{v} // {p}", ("floor-divided by {p}", "divided by {p} and rounded down"), _ints(2, 9),
                    lambda v, p: v // p),
}

EXTREMES = {
    "max": Variant("{v} > best", ("largest", "biggest", "maximum"), (None,), lambda v, best: v > best),
    "min": Variant("{v} < best", ("smallest", "minimum"), (None,), lambda v, best: v < best),
}

INDEX_CONDITIONS = {
    "even_idx": Variant("{v} % 2 == 0", ("at even indices", "at even positions"), (None,), lambda i, p: i % 2 == 0),
    "odd_idx": Variant("{v} % 2 == 1", ("at odd indices", "at odd positions"), (None,), lambda i, p: i % 2 == 1),
    "kth": Variant("{v} % {p} == 0", ("at indices divisible by {p}", "at every index that is a multiple of {p}"),
                   _ints(2, 4), lambda i, p: i % p == 0),
    "from_k": Variant("{v} >= {p}", ("at index {p} or later", "from index {p} onwards"), _ints(1, 4),
                      lambda i, p: i >= p),
}

NEIGHBOURS = {
    "up": Variant("{a}[i] > {a}[i - 1]", ("greater than", "larger than"), (None,), lambda cur, prev: cur > prev),
    "down": Variant("{a}[i] < {a}[i - 1]", ("less than", "smaller than"), (None,), lambda cur, prev: cur < prev),
    "same": Variant("{a}[i] == {a}[i - 1]", ("equal to", "the same as"), (None,), lambda cur, prev: cur == prev),
}


@dataclass(frozen=True)
class Kind:
    """One kind of task: its variants, wordings, body template, inputs and semantics.

    ``body`` uses ``{a}`` (the argument), ``{cond}`` (the variant's code on ``elem``) and
    ``{d}`` (a second parameter, for replacement characters). ``solve(arg, test, p, d)`` is
    the trusted implementation; ``test(v)`` is the variant's semantics with ``p`` bound.
    """

    name: str
    variants: dict
    args: tuple[str, ...]
    names: tuple[str, ...]
    templates: tuple[str, ...]
    body: str
    elem: str
    inputs: str
    solve: Callable
    held_variant: str | None = None
    held_param: Any = None


def _solve_minmax(xs, test, p, d):
    best = xs[0]
    for x in xs:
        if test(x, best):
            best = x
    return best


def _solve_digits(n, test, p, d, stop=0):
    count = 0
    while n > stop:
        count += bool(test(n % 10))
        n //= 10
    return count


KINDS = {k.name: k for k in [
    Kind("count", INT_CONDITIONS, ("nums", "values", "xs"), ("count_matching", "count_nums", "how_many"),
         ("Return how many numbers in {a} are {P}.", "Count the numbers in {a} that are {P}.",
          "Return the number of elements of {a} that are {P}."),
         "count = 0\nfor x in {a}:\n    if {cond}:\n        count += 1\nreturn count", "x", "ints",
         lambda xs, t, p, d: sum(1 for x in xs if t(x)), held_variant="ndiv", held_param=7),
    Kind("filter", INT_CONDITIONS, ("nums", "values", "xs"), ("filter_nums", "keep_matching", "select"),
         ("Return a list of the numbers in {a} that are {P}.", "Keep only the numbers in {a} that are {P}.",
          "Return the elements of {a} that are {P}, in order."),
         "result = []\nfor x in {a}:\n    if {cond}:\n        result.append(x)\nreturn result", "x", "ints",
         lambda xs, t, p, d: [x for x in xs if t(x)], held_variant="odd", held_param=4),
    Kind("sum", INT_CONDITIONS, ("nums", "values", "xs"), ("sum_matching", "total_of", "add_matching"),
         ("Return the sum of the numbers in {a} that are {P}.", "Add up the numbers in {a} that are {P}.",
          "Return the total of all elements of {a} that are {P}."),
         "total = 0\nfor x in {a}:\n    if {cond}:\n        total += x\nreturn total", "x", "ints",
         lambda xs, t, p, d: sum(x for x in xs if t(x)), held_variant="lt", held_param=6),
    Kind("any", INT_CONDITIONS, ("nums", "values", "xs"), ("has_match", "any_match", "contains_match"),
         ("Return True if some number in {a} is {P}, else False.", "Check whether any element of {a} is {P}.",
          "Return whether {a} contains a number that is {P}."),
         "for x in {a}:\n    if {cond}:\n        return True\nreturn False", "x", "ints",
         lambda xs, t, p, d: any(t(x) for x in xs), held_variant="div", held_param=3),
    Kind("all", INT_CONDITIONS, ("nums", "values", "xs"), ("all_match", "every_match", "check_all"),
         ("Return True if every number in {a} is {P}, else False.", "Check whether all elements of {a} are {P}.",
          "Return whether each number in {a} is {P}."),
         "for x in {a}:\n    if not {cond}:\n        return False\nreturn True", "x", "ints",
         lambda xs, t, p, d: all(t(x) for x in xs), held_variant="even", held_param=5),
    Kind("first_index", INT_CONDITIONS, ("nums", "values", "xs"), ("first_index", "find_first", "index_of_first"),
         ("Return the index of the first number in {a} that is {P}, or -1 if there is none.",
          "Find the position of the first element of {a} that is {P}; return -1 if none.",
          "Return the smallest i such that {a}[i] is {P}, or -1."),
         "for i in range(len({a})):\n    if {cond}:\n        return i\nreturn -1", "{a}[i]", "ints",
         lambda xs, t, p, d: next((i for i, x in enumerate(xs) if t(x)), -1), held_variant="eq", held_param=2),
    Kind("range_sum", INT_CONDITIONS, ("n", "limit"), ("range_sum", "sum_to_n", "sum_range"),
         ("Return the sum of the integers from 1 to {a} that are {P}.",
          "Add up the numbers between 1 and {a} (inclusive) that are {P}.",
          "Return the total of all numbers in 1..{a} that are {P}."),
         "total = 0\nfor i in range(1, {a} + 1):\n    if {cond}:\n        total += i\nreturn total", "i", "limit",
         lambda n, t, p, d: sum(i for i in range(1, n + 1) if t(i)), held_variant="gt", held_param=5),
    Kind("digit_count", INT_CONDITIONS, ("n", "num"), ("count_digits", "digit_count", "digits_matching"),
         ("Return how many digits of {a} are {P}.", "Count the digits of {a} that are {P}.",
          "Return the number of digits in {a} that are {P}."),
         "count = 0\nwhile {a} > 0:\n    if {cond}:\n        count += 1\n    {a} = {a} // 10\nreturn count",
         "{a} % 10", "number", _solve_digits, held_variant="ge", held_param=4),
    Kind("count_chars", CHAR_CONDITIONS, ("s", "text", "word"), ("count_chars", "char_count", "how_many_chars"),
         ("Return the number of {P} in {a}.", "Count the {P} in {a}.", "Return how many {P} the string {a} has."),
         "count = 0\nfor ch in {a}:\n    if {cond}:\n        count += 1\nreturn count", "ch", "string",
         lambda s, t, p, d: sum(1 for ch in s if t(ch)), held_variant="upper", held_param="e"),
    Kind("remove_chars", CHAR_CONDITIONS, ("s", "text", "word"), ("remove_chars", "strip_chars", "drop_chars"),
         ("Return {a} with all {P} removed.", "Remove the {P} from {a} and return the result.",
          "Return a copy of {a} without its {P}."),
         "result = ''\nfor ch in {a}:\n    if not {cond}:\n        result += ch\nreturn result", "ch", "string",
         lambda s, t, p, d: "".join(ch for ch in s if not t(ch)), held_variant="digit", held_param="a"),
    Kind("replace_chars", CHAR_CONDITIONS, ("s", "text", "word"), ("replace_chars", "swap_chars", "substitute"),
         ("Return {a} with all {P} replaced by {d}.", "Replace the {P} in {a} with {d} and return the result.",
          "Return a copy of {a} in which the {P} become {d}."),
         "result = ''\nfor ch in {a}:\n    if {cond}:\n        result += {d}\n    else:\n        result += ch\n"
         "return result", "ch", "string",
         lambda s, t, p, d: "".join(d if t(ch) else ch for ch in s), held_variant="vowel", held_param="o"),
    Kind("minmax", EXTREMES, ("nums", "values", "xs"), ("find_value", "pick", "extreme_value"),
         ("Return the {P} number in {a}.", "Find the {P} element of the non-empty list {a}.",
          "Return the {P} value in {a}."),
         "best = {a}[0]\nfor x in {a}:\n    if {cond}:\n        best = x\nreturn best", "x", "nonempty",
         _solve_minmax),
    Kind("map", MAP_OPS, ("nums", "values", "xs"), ("transform", "map_nums", "apply_op"),
         ("Return a list with each number in {a} {P}.", "Return a new list of the elements of {a}, each {P}.",
          "Return every number of {a} {P}, as a list."),
         "result = []\nfor x in {a}:\n    result.append({cond})\nreturn result", "x", "ints",
         lambda xs, t, p, d: [t(x) for x in xs], held_param=3),
    Kind("index_sum", INDEX_CONDITIONS, ("nums", "values", "xs"), ("index_sum", "sum_positions", "sum_at"),
         ("Return the sum of the elements of {a} {P}.", "Add up the numbers in {a} that are {P}.",
          "Return the total of the values in {a} {P}."),
         "total = 0\nfor i in range(len({a})):\n    if {cond}:\n        total += {a}[i]\nreturn total", "i", "ints",
         lambda xs, t, p, d: sum(x for i, x in enumerate(xs) if t(i)), held_variant="odd_idx", held_param=3),
    Kind("adjacent", NEIGHBOURS, ("nums", "values", "xs"), ("count_steps", "count_pairs", "adjacent_count"),
         ("Count the positions i where {a}[i] is {P} {a}[i - 1].",
          "Return how many elements of {a} are {P} the element just before them.",
          "Return the number of times an element of {a} is {P} the previous one."),
         "count = 0\nfor i in range(1, len({a})):\n    if {cond}:\n        count += 1\nreturn count", "", "ints",
         lambda xs, t, p, d: sum(1 for i in range(1, len(xs)) if t(xs[i], xs[i - 1])), held_variant="same"),
]}

REPLACEMENTS = tuple("*-_#.")
N_CASES = 5


def kinds() -> list[str]:
    """Names of the task kinds."""
    return list(KINDS)


def held_out() -> dict[str, dict]:
    """The split rule: per kind, the held-out variant, wording template index and parameter."""
    return {k.name: {"variant": k.held_variant, "wording": len(k.templates) - 1, "param": k.held_param}
            for k in KINDS.values()}


@dataclass(frozen=True)
class Spec:
    """The sampled choices that make one task."""

    kind: str
    variant: str
    param: Any
    template: int
    phrase: int
    name: str
    arg: str
    extra: Any = None

    def held(self) -> tuple[str, ...]:
        """Which held-out components this task contains."""
        k = KINDS[self.kind]
        flags = {"variant": self.variant == k.held_variant, "wording": self.template == len(k.templates) - 1,
                 "param": k.held_param is not None and self.param == k.held_param}
        return tuple(h for h in HOLDOUTS if flags[h])


def _available_holdouts(kind: Kind) -> list[str]:
    out = ["wording"]
    if kind.held_variant is not None:
        out.append("variant")
    if any(kind.held_param in v.params for v in kind.variants.values()) and kind.held_param is not None:
        out.append("param")
    return out


def sample_spec(rng: random.Random, split: str) -> Spec:
    """One task's choices: ``train`` avoids every held-out component, ``test`` has at least one."""
    kind = KINDS[rng.choice(list(KINDS))]
    last = len(kind.templates) - 1
    variants = list(kind.variants)
    templates = list(range(len(kind.templates)))
    force = rng.choice(_available_holdouts(kind)) if split == "test" else None
    if split == "train":
        variants = [v for v in variants if v != kind.held_variant]
        templates = templates[:last]
    if force == "variant":
        variants = [kind.held_variant]
    elif force == "param":
        variants = [v for v in variants if kind.held_param in kind.variants[v].params]
    elif force == "wording":
        templates = [last]
    variant = rng.choice(variants)
    params = list(kind.variants[variant].params)
    if split == "train" and kind.held_param is not None:
        params = [p for p in params if p != kind.held_param]
    param = kind.held_param if force == "param" else rng.choice(params)
    template = rng.choice(templates)
    phrase = rng.randrange(len(kind.variants[variant].phrases))
    extra = rng.choice(REPLACEMENTS) if kind.name == "replace_chars" else None
    return Spec(kind.name, variant, param, template, phrase, rng.choice(kind.names), rng.choice(kind.args), extra)


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def render(spec: Spec) -> tuple[str, str]:
    """``(prompt, reference body)`` of a spec."""
    kind, var = KINDS[spec.kind], KINDS[spec.kind].variants[spec.variant]
    p, d = _show(spec.param), _show(spec.extra)
    phrase = var.phrases[spec.phrase].format(p=p)
    sentence = kind.templates[spec.template].format(a=spec.arg, P=phrase, d=d)
    elem = kind.elem.format(a=spec.arg)
    cond = var.code.format(v=elem, p=p, a=spec.arg)
    body = kind.body.format(a=spec.arg, cond=cond, d=d)
    prompt = f'def {spec.name}({spec.arg}):\n    """{sentence}"""\n'
    return prompt, "".join("    " + line + "\n" for line in body.splitlines())


def _draw_input(rng: random.Random, kind: Kind, spec: Spec):
    near = spec.param if isinstance(spec.param, int) else 3
    if kind.inputs in ("ints", "nonempty"):
        if rng.random() < 0.3:  # short lists around the parameter catch boundary mistakes (> vs >=)
            return [rng.randint(near - 1, near + 1) for _ in range(rng.randint(1, 3))]
        n = rng.randint(1 if kind.inputs == "nonempty" else 0, 7)
        return [rng.randint(near - 2, near + 2) if rng.random() < 0.5 else rng.randint(-3, 15) for _ in range(n)]
    if kind.inputs == "limit":
        return rng.randint(1, 25)
    if kind.inputs == "number":
        return int("".join(str(rng.choice([near % 10, rng.randint(0, 9)])) for _ in range(rng.randint(1, 6)))) or 1
    target = spec.param if isinstance(spec.param, str) else "a"
    alphabet = "abcdeiostxz" + "AEB" + "0379" + " " + target * 3
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))


def _semantics(kind: Kind, spec: Spec) -> Callable:
    fn = kind.variants[spec.variant].fn
    assert fn is not None, f"{kind.name} variant {spec.variant} has no semantics"
    if kind.name in ("minmax", "adjacent"):
        return fn
    return lambda v: fn(v, spec.param)


PITFALLS = {
    "minmax": [lambda xs, t: xs[0], lambda xs, t: xs[-1]],
    "all": [lambda xs, t: not xs],
    "any": [lambda xs, t: bool(xs)],
    "adjacent": [lambda xs, t: sum(1 for i in range(len(xs)) if t(xs[i], xs[i - 1])),
                 lambda xs, t: sum(1 for i in range(1, len(xs)) if t(xs[i], xs[i - 1]) or xs[i] == xs[i - 1])],
    "digit_count": [lambda n, t: _solve_digits(n, t, None, None, stop=1)],
}
"""Kind-specific slips the tests must catch (first element as the extreme, wrap-around ...)."""


def _near_params(spec: Spec, name: str, variant: Variant) -> list:
    if name == spec.variant:
        return [spec.param - 1, spec.param + 1] if isinstance(spec.param, int) else []
    if variant.params == (None,):
        return [None]
    return [spec.param] if type(spec.param) is type(variant.params[0]) else []


def near_misses(spec: Spec) -> list[Callable]:
    """Trusted semantics of likely slips: the kind's other variants at the same parameter, the
    same variant at parameter +-1 (``>`` vs ``>=``, ``< 7`` vs ``< 8`` ...), and ``PITFALLS``."""
    kind = KINDS[spec.kind]
    out = []
    for name, variant in kind.variants.items():
        for p in _near_params(spec, name, variant):
            alt = Spec(spec.kind, name, p, spec.template, 0, spec.name, spec.arg, spec.extra)
            out.append(lambda arg, alt=alt: kind.solve(arg, _semantics(kind, alt), alt.param, alt.extra))
    test = _semantics(kind, spec)
    return out + [lambda arg, slip=slip: slip(arg, test) for slip in PITFALLS.get(kind.name, [])]


def make_cases(rng: random.Random, spec: Spec) -> list[tuple[Any, Any]] | None:
    """``N_CASES`` distinct (input, expected output) pairs that tell the task from its near misses.

    From a pool of random inputs, cases are picked greedily to separate the task from as many
    ``near_misses`` as possible, then to show new outputs. None when the five cases would show
    fewer than three distinct outputs (two for True/False tasks): such specs are near-constant
    (e.g. "digits greater than 9") and are drawn again.
    """
    kind = KINDS[spec.kind]
    test = _semantics(kind, spec)
    pool: list[tuple] = []
    seen: set = set()
    fixed: list[list[int]] = [[]] if kind.inputs == "ints" else []
    if kind.inputs in ("ints", "nonempty") and isinstance(spec.param, int):
        fixed += [[spec.param + k] * n for k in (-1, 0, 1) for n in (1, 2)]
    for attempt in range(80):
        arg = fixed[attempt] if attempt < len(fixed) else _draw_input(rng, kind, spec)
        if repr(arg) not in seen and len(pool) < 40:
            seen.add(repr(arg))
            pool.append((arg, kind.solve(arg, test, spec.param, spec.extra)))
    misses = []
    for alt in near_misses(spec):
        try:
            misses.append([alt(arg) != out for arg, out in pool])
        except ArithmeticError:  # e.g. a modulus of 0: not a slip worth testing for
            continue
    open_misses = [m for m in misses if any(m)]
    tiebreak = [rng.random() for _ in pool]
    chosen: list[int] = []
    while len(chosen) < N_CASES:
        outputs = {repr(pool[i][1]) for i in chosen}

        def gain(i, open_misses=open_misses, outputs=outputs):
            caught = sum(m[i] for m in open_misses)
            return (caught, repr(pool[i][1]) not in outputs, tiebreak[i])

        best = max((i for i in range(len(pool)) if i not in chosen), key=gain, default=None)
        if best is None:
            return None
        chosen.append(best)
        open_misses = [m for m in open_misses if not m[best]]
    cases = [pool[i] for i in sorted(chosen)]
    wanted = 2 if isinstance(cases[0][1], bool) else 3
    return cases if len({repr(out) for _, out in cases}) >= wanted else None


def check_code(cases: list[tuple[Any, Any]]) -> str:
    """``check(candidate)`` asserting every case."""
    lines = [f"    assert candidate({arg!r}) == {out!r}" for arg, out in cases]
    return "def check(candidate):\n" + "\n".join(lines) + "\n"


def make_task(seed: int, split: str, index: int) -> Task:
    """Task ``index`` of ``split`` for ``seed`` (independent of how many are generated)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"minicode:{seed}:{split}:{index}")
    cases = None
    while cases is None:  # a few specs are constant functions: draw again
        spec = sample_spec(rng, split)
        cases = make_cases(rng, spec)
    prompt, body = render(spec)
    return Task(task_id=f"minicode/{seed}/{split}/{index}", prompt=prompt, entry_point=spec.name,
                test=check_code(cases), reference=body, source="minicode", stop=HUMANEVAL_STOP,
                metadata={"kind": spec.kind, "variant": spec.variant, "param": spec.param,
                          "template": spec.template, "held_out": spec.held(), "split": split, "seed": seed,
                          "index": index, "cases": cases, "replacement": spec.extra})


def load_minicode(split: str = "train", n: int = 1000, seed: int = 0) -> list[Task]:
    """``n`` minicode tasks of ``split`` (``"train"`` or ``"test"``), deterministic in ``seed``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [make_task(seed, split, i) for i in range(n)]
