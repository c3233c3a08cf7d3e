"""The heap after start-up. A service builds most of what it keeps before it takes its first record:
the registry view, its spatial index, caches caught up from compacted topics (hundreds of thousands
of objects). Python's cyclic collector would traverse all of them again and again, tens of µs a
record on the hot path; `settle` collects once, moves what survived into the permanent generation
(`gc.freeze`: never traversed again, still freed by reference counting) and lets more allocations
pass between young collections, which a batch of records allocates in bursts anyway."""

from __future__ import annotations

import gc

# Young-generation threshold: the default 700 runs a collection every few records of a batch.
GEN0_THRESHOLD = 50_000


def settle() -> None:
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, gen0), gen1, gen2)
