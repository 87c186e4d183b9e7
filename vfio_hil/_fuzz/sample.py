"""What a seeded run's sample is a function of, and what it must not depend on.

Hypothesis mixes constants it finds in the source of every loaded module
outside site-packages into about 5% of its draws.  With vfio-hil installed
from a checkout (or a user's own test modules loaded) that pool depends on
which modules happen to be imported and on every literal in them, so an
unrelated edit, or running through ``python -m vfio_hil`` instead of pytest,
moved a "seeded" sample.  ``fixed_sample()`` empties that pool for the
duration of a run: the sample is then a function of the seed, the
strategies, the device and hypothesis' version (its global constants).

The pool is internal to hypothesis (``hypothesis.internal.conjecture.providers``,
6.1xx); where it is missing the run goes on unchanged, and
``tests/test_fuzz_sample.py`` notices.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["fixed_sample"]

_lock = threading.Lock()


@contextlib.contextmanager
def fixed_sample() -> Iterator[bool]:
    """Run hypothesis without local source constants; yields whether it could."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without the module
        yield False
        return
    original: Any = getattr(providers, "_get_local_constants", None)
    constants: Any = getattr(providers, "Constants", None)
    cache: Any = getattr(providers, "CONSTANTS_CACHE", None)
    if original is None or constants is None or cache is None:
        yield False
        return
    with _lock:
        empty = constants()
        providers._get_local_constants = lambda: empty
        cache.cache.clear()  # it holds pools built from the local constants
        try:
            yield True
        finally:
            providers._get_local_constants = original
            cache.cache.clear()
