"""Public names imported on first use (PEP 562), for the package and its subpackages.

A package lists each public name once, with the module it lives in; importing
the package then loads none of those modules until a name is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, module_of: Mapping[str, str], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package`` for the names of ``module_of``.

    A name is imported from its module the first time it is asked for and
    kept in ``namespace`` (the package's globals), so later lookups cost
    nothing.
    """

    def load(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}", name=name)
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *module_of})

    return load, listing
