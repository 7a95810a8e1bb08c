"""Method registries: one per stage, reached through a dispatcher with ``method=``.

Example::

    DEMOSAIC = Registry("demosaic")

    @DEMOSAIC.register("bilinear")
    def demosaic_bilinear(mosaic, *, cfa): ...

    def demosaic(mosaic, *, cfa, method="menon2007", **options):
        return DEMOSAIC.get(method)(mosaic, cfa=cfa, **options)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from obscura.core.errors import UnknownMethod

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """A named table of interchangeable implementations of one stage."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._methods: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``fn`` under ``name``."""

        def decorator(fn: F) -> F:
            if name in self._methods:
                raise ValueError(f"{self.stage}: method {name!r} registered twice")
            self._methods[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        """The function registered as ``name``; the error lists the valid names."""
        try:
            return self._methods[name]
        except (KeyError, TypeError):
            valid = ", ".join(sorted(self._methods))
            raise UnknownMethod(f"unknown {self.stage} method {name!r}; valid methods: {valid}") from None

    def names(self) -> list[str]:
        """Registered method names, sorted."""
        return sorted(self._methods)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.stage!r}, methods={self.names()})"
