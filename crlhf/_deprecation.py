"""Old names that keep working for a while, each with a warning that names the new one.

Python callers get a ``DeprecationWarning`` (shown in notebooks, tests and ``-W default``);
config files read by the command line get a ``FutureWarning``, which Python shows to end users
by default.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Mapping
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["moved_names", "renamed_fields", "renamed_keys"]

T = TypeVar("T")


def _warn(message: str, category: type[Warning] = DeprecationWarning, stacklevel: int = 3) -> None:
    warnings.warn(message, category, stacklevel=stacklevel)


def renamed_fields(renames: Mapping[str, str]):
    """Class decorator for a dataclass whose fields were renamed ``old -> new``.

    ``Cls(old=v)`` still works (as ``Cls(new=v)``), and ``obj.old`` reads and writes ``obj.new``;
    each use warns. Passing both names is an error.
    """

    def decorate(cls: type[T]) -> type[T]:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{cls.__name__}: pass {new!r} only ({old!r} is its old name)")
                    _warn(f"{cls.__name__}.{old} is now {cls.__name__}.{new}; the old name will be removed")
                    kwargs[new] = kwargs.pop(old)
            init(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[method-assign]
        for old, new in renames.items():
            setattr(cls, old, _alias(cls.__name__, old, new))
        return cls

    return decorate


def _alias(owner: str, old: str, new: str) -> property:
    message = f"{owner}.{old} is now {owner}.{new}; the old name will be removed"

    def get(self):
        _warn(message)
        return getattr(self, new)

    def set_(self, value):
        _warn(message)
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated: the old name of ``{new}``.")


def renamed_keys(data: Mapping[str, Any], renames: Mapping[str, str], where: str,
                 category: type[Warning] = DeprecationWarning) -> dict[str, Any]:
    """``data`` with each old key ``old`` of ``renames`` under its new name, warning once per key.

    ``where`` names the table or file for the message; both names at once is a ``ValueError``.
    """
    out = dict(data)
    for old, new in renames.items():
        if old in out:
            if new in out:
                raise ValueError(f"{where}: {old!r} and {new!r} both given ({old!r} is the old name of {new!r})")
            _warn(f"{where}: {old!r} is now {new!r}; the old name will be removed", category)
            out[new] = out.pop(old)
    return out


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A PEP 562 module ``__getattr__`` for names that moved out of ``module``: ``moved`` maps each
    name to its new module, from which it is imported on use, with a warning naming the new home."""

    def __getattr__(name: str) -> Any:
        home = moved.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {home}; import it from there", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), name)

    return __getattr__
