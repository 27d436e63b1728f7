"""The package's exported names resolve, and importing it loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import shared_hpc


def test_every_exported_name_resolves_to_its_module():
    for name in shared_hpc.__all__:
        value = getattr(shared_hpc, name)
        assert name == "__version__" or value.__name__ == name
    assert set(shared_hpc.__all__) <= set(dir(shared_hpc))


def test_import_loads_only_what_is_used():
    code = (
        "import sys\n"
        "from shared_hpc import UserError\n"
        "heavy = {'psutil', 'numpy', 'importlib.metadata', 'argparse', 'logging', 'torch'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_lazy_name_may_not_be_a_submodule_too():
    import sys
    import types

    from shared_hpc.lazy import lazy_exports

    package = types.ModuleType("clashing")
    sys.modules["clashing"] = package
    try:
        with pytest.raises(ValueError, match=r"equal to their submodule: \['train'\]"):
            lazy_exports("clashing", {"train": "clashing.train"})
        getattr_, dir_ = lazy_exports("clashing", {"dumps": "json"})
        assert getattr_("dumps") is __import__("json").dumps and "dumps" in dir_()
        with pytest.raises(AttributeError, match="has no attribute 'loads'"):
            getattr_("loads")
    finally:
        del sys.modules["clashing"]
