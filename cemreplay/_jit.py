"""numba's ``njit`` for every kernel module, without importing numba when its JIT is off.

With ``NUMBA_DISABLE_JIT`` set to a non-zero integer, numba's own ``njit`` returns each function
unchanged and the kernels run as Python; this ``njit`` does the same without importing numba at
all (about 0.2 s), which is what a one-session lookup from the terminal wants
(:func:`cemreplay.cli._interpret_small_lookup`). Otherwise it *is* ``numba.njit``. The setting
is read once, when this module is first imported, as numba reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast, overload

import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])


class Njit(Protocol):
    """``njit``'s two forms: ``@njit`` and ``@njit(**options)``; the kernels keep their types
    (numba's dispatchers are called like the functions they compile)."""

    @overload
    def __call__(self, fn: _F, /) -> _F: ...

    @overload
    def __call__(self, **options: Any) -> Callable[[_F], _F]: ...


def _disabled(value: str | None) -> bool:
    """How numba reads ``NUMBA_DISABLE_JIT``: an integer, non-zero disables (anything else
    is ignored, as numba ignores it with a warning)."""
    try:
        return int(value or "0") != 0
    except ValueError:
        return False


#: True when the kernels run as Python.
DISABLED: bool = _disabled(os.environ.get("NUMBA_DISABLE_JIT"))


def _as_is(*args: Any, **options: Any) -> Any:
    """``njit`` with the JIT off: ``@njit`` and ``@njit(...)`` both leave the function as is."""
    if len(args) == 1 and callable(args[0]) and not options:
        return args[0]

    def keep(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn

    return keep


def _numba_njit() -> Njit:
    import numba

    return cast(Njit, numba.njit)


njit: Njit = cast(Njit, _as_is) if DISABLED else _numba_njit()

#: Index arrays in hot loops with ``ix(i)`` (``i`` known non-negative): numba adds a
#: negative-index wraparound to every signed index (a sign mask, an and, an add, and the
#: registers for them); an unsigned index has none. Measured on a store loop: 3x fewer
#: instructions. Under ``NUMBA_DISABLE_JIT`` it is numpy's ``uint64``, which indexes alike.
ix = np.uint64
