"""The package's public API: lazy attributes that resolve to the owning modules' objects."""

import subprocess
import sys

import pytest

import crlhf


def test_import_crlhf_loads_no_heavy_module():
    code = ("import sys, crlhf; heavy = [m for m in ('torch', 'transformers', 'pandas', 'sqlalchemy', "
            "'matplotlib', 'scipy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", [n for n in crlhf.__all__ if n != "__version__"])
def test_every_export_is_the_owning_modules_object(name):
    import importlib

    value = getattr(crlhf, name)
    owner = importlib.import_module(crlhf._EXPORTS[name])
    assert value is getattr(owner, name)
    assert name in dir(crlhf)


def test_submodules_are_attributes_and_evaluate_is_the_module():
    import crlhf.evaluate as module

    assert crlhf.reward.rewards is crlhf.rewards
    assert crlhf.evaluate is module and callable(crlhf.evaluate.evaluate)


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        crlhf.Nope  # noqa: B018


MODULES_WITHOUT_ALL = {"crlhf", "crlhf.__main__", "crlhf._sandbox_worker"}


def _modules():
    import pkgutil

    return sorted(m.name for m in pkgutil.walk_packages(crlhf.__path__, "crlhf.") if m.name not in MODULES_WITHOUT_ALL)


@pytest.mark.parametrize("name", _modules())
def test_every_module_lists_its_public_names(name):
    """``__all__`` names only what the module defines (or, for a package, re-exports), once each;
    and every name the package exports lazily is in its owner's ``__all__``."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    names = module.__all__
    assert len(names) == len(set(names)), name
    for n in names:
        value = getattr(module, n)  # raises if __all__ lists a name the module lacks
        if not hasattr(module, "__path__") and (inspect.isfunction(value) or inspect.isclass(value)):
            assert value.__module__ == name, (name, n, value.__module__)
    owned = [n for n, owner in crlhf._EXPORTS.items() if owner == name]
    assert set(owned) <= set(names), (name, sorted(set(owned) - set(names)))
