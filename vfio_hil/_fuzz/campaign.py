"""Long fuzz runs in bounded memory: hypothesis' engine, one chunk at a time.

Hypothesis' engine keeps data on every example it runs until its run ends
(about 0.35 MB an example of the ``fuzz`` profile), so one run of 100_000
examples would need ~35 GB.  ``run_campaign`` runs a machine class as
consecutive engine runs of at most ``CHUNK_EXAMPLES`` examples each (each a
fresh ``run_state_machine_as_test`` through ``DifferentialMachine.run``, so
its engine data is freed when it ends, and its sample does not depend on
what is imported) and stops at the first that fails, as one long run would.

What stays across chunks: the machine class, so its device stays open and
its statistics (examples, steps, the first failure) add up; and the example
database when the settings have one, which every chunk reads at its start.
Each chunk draws from its own seed (``chunk_seed``), so chunks do not repeat
each other's sample.  A run of at most ``CHUNK_EXAMPLES`` examples (the
``ci`` profile's 500 among them) is one plain ``machine.run()``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from hypothesis import seed as hypothesis_seed
from hypothesis import settings

from vfio_hil._fuzz.profiles import default_seed

if TYPE_CHECKING:  # vfio_hil.stateful imports vfio_hil._fuzz: no cycle at run time
    from vfio_hil.stateful import DifferentialMachine

__all__ = ["CHUNK_EXAMPLES", "chunk_seed", "chunk_sizes", "run_campaign"]

# Measured (docs/fuzzing.md, "Long runs"): a fuzz-profile engine run grows
# ~0.35 MB per example, and starting one costs ~70 ms of CPU, about one
# example, so throughput does not decide.  1000 keeps a run near 0.5 GB and
# leaves hypothesis' per-run behaviour (its first 50 examples kept short, no
# choice sequence tried twice) long stretches to work on.
CHUNK_EXAMPLES = 1000
_SEED_ATTR = "_hypothesis_internal_use_seed"


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """``total`` examples as chunks of ``chunk``, the last one the remainder."""
    if total < 1 or chunk < 1:
        raise ValueError(f"total ({total}) and chunk ({chunk}) must be positive")
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a run from ``seed``.

    Chunk 0 draws from ``seed`` itself, like the unchunked run; the others
    from a digest of both numbers (stable across processes and Python
    versions, unlike ``hash``).
    """
    if index == 0:
        return seed
    digest = hashlib.sha256(f"vfio-hil chunk {seed} {index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def run_campaign(
    machine: type[DifferentialMachine],
    *,
    seed: int | None = None,
    chunk: int | None = None,
) -> int:
    """Run ``machine`` under its ``TestCase.settings`` in chunks; return how many ran.

    seed:  the run's seed (``make_machine(seed=)``'s; default: the settings'
           ``default_seed``, else a random one drawn here).
    chunk: examples per chunk (default ``CHUNK_EXAMPLES``).

    Raises what the chunk that failed raised (``Divergence``, ``KeyboardInterrupt``).
    """
    chosen: settings = machine.TestCase.settings
    size = CHUNK_EXAMPLES if chunk is None else chunk
    if chosen.max_examples <= size:
        machine.run(chosen)  # exactly the unchunked run
        return 1
    run_seed = seed if seed is not None else default_seed(chosen)
    if run_seed is None:
        # A random run.  Unseeded chunks would be random too, except under
        # pytest's --hypothesis-seed, where every chunk would repeat one sample.
        run_seed = secrets.randbits(64)
    sizes = chunk_sizes(chosen.max_examples, size)
    # hypothesis' @seed sets this attribute; put make_machine's back afterwards.
    original = getattr(machine, _SEED_ATTR, None)
    try:
        for index, examples in enumerate(sizes):
            hypothesis_seed(chunk_seed(run_seed, index))(machine)
            machine.run(settings(chosen, max_examples=examples))
    finally:
        setattr(machine, _SEED_ATTR, original)
    return len(sizes)
