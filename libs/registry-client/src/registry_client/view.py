"""Every service's view of the grid registry, rebuilt from the compacted `grid.registry.v1` topic.

Keys are "<kind>:<code>"; values are the full current record as JSON (contracts/schemas/
registry-record.v1.json); a null value is a tombstone. The view is read at start from offset zero and
then follows changes live (`handle` is a consumer-loop handler). On top of the records it answers the
questions services ask on their hot path, all in memory:

- `grid_index()` / `await grid_index_async()`: a GridIndex over every active division with an area and
  every active grid, rebuilt lazily on the first call after a division or grid changed (never per
  change; the async form builds in a worker thread); an eager view rebuilds it as changes arrive,
  once per burst of them (`more_coming`);
- `station(mn)`: the HJ 212 monitoring station with that MN.

The rules over its records live once, in `registry_client.rules`: `match_route(view.all("routing_rule")
.values(), ...)` for the routing rule in force (分类处置) and its departments, `match_sla` and `due_at`
for deadlines with the working-day calendar.

The view is not thread-safe; use it from the event loop that feeds it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from shapely.geometry import shape

from onegrid.geo import Cell, GridChain, GridIndex, Level
from onegrid.geo.raster import DEFAULT_MAX_TILES
from onegrid.kafka import BatchResult, Record
from registry_client.rules import Json

ChangeListener = Callable[[str, str, dict[str, Any] | None], None]

SPATIAL_KINDS = ("division", "grid")
_CELL_LEVELS: dict[str, Level] = {
    "district": "district",
    "street": "street",
    "community": "community",
    "grid": "grid",
    "micro_grid": "micro_grid",
    "special": "special",
}


class RegistryView:
    def __init__(self, *, max_tiles: int = DEFAULT_MAX_TILES, eager_index: bool = False) -> None:
        """`eager_index`: once an index exists, a change to divisions or grids received by `handle`
        rebuilds it in a worker thread before the next batch of changes, so the hot path's
        `grid_index()` finds it built instead of rebuilding it on the event loop (about a second)."""
        self.eager_index = eager_index
        self.records: dict[str, dict[str, Json]] = {}
        self.listeners: list[ChangeListener] = []
        self.version = 0  # bumps with every applied change: cheap "has anything changed?"
        self.spatial_version = 0  # bumps with every division or grid change
        self._index: GridIndex | None = None
        self._index_version = -1
        self._building = asyncio.Lock()
        self._max_tiles = max_tiles  # GridIndex raster size: build time against lookup speed
        # Set by the composition root to its table's `more_known`: during a burst (the registry
        # seeded or re-imported: thousands of records in several batches) the eager rebuild waits
        # for the burst's last batch instead of building an index per batch (seconds each).
        self.more_coming: Callable[[], bool] = lambda: False

    def get(self, kind: str, code: str) -> Json | None:
        return self.records.get(kind, {}).get(code)

    def all(self, kind: str) -> dict[str, Json]:
        return self.records.get(kind, {})

    def apply(self, key: str, value: bytes | None) -> None:
        kind, _, code = key.partition(":")
        if not code:
            raise ValueError(f"registry key {key!r} is not <kind>:<code>")
        bucket = self.records.setdefault(kind, {})
        record = None if value is None else json.loads(value)
        if record is None:
            bucket.pop(code, None)
        else:
            bucket[code] = record
        self.version += 1
        if kind in SPATIAL_KINDS:
            self.spatial_version += 1
        for listener in self.listeners:
            listener(kind, code, record)

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        """A consumer-loop handler: apply each change in order. Idempotent (last write wins)."""
        for r in records:
            if r.key is None:
                continue
            self.apply(r.key.decode(), r.value)
        if (
            self.eager_index
            and self._index is not None
            and self._index_version != self.spatial_version
            and not self.more_coming()
        ):
            await self.grid_index_async()
        return BatchResult()

    # -- questions asked on the hot path ------------------------------------------------------------

    def grid_index(self) -> GridIndex:
        """The spatial index over the current cells; the same object until a division or grid changes.

        Build cost is paid by the first caller after a change (about a second for a whole district);
        a malformed cell on the topic raises ValueError/TypeError here rather than being skipped.
        """
        if self._index is None or self._index_version != self.spatial_version:
            version = self.spatial_version
            cells = cells_from_records(self.all("division"), self.all("grid"))
            self._index = GridIndex.build(cells, max_tiles=self._max_tiles)
            self._index_version = version
        return self._index

    async def grid_index_async(self) -> GridIndex:
        """`grid_index()`, but a rebuild runs in a worker thread so the event loop keeps serving.

        The cells are taken from the records when the call starts; a change applied during the build
        makes the next call rebuild again.
        """
        async with self._building:  # concurrent callers wait for one build instead of each starting one
            if self._index is not None and self._index_version == self.spatial_version:
                return self._index
            version = self.spatial_version
            cells = cells_from_records(self.all("division"), self.all("grid"))
            index = await asyncio.to_thread(GridIndex.build, cells, max_tiles=self._max_tiles)
            if version >= self._index_version:
                self._index, self._index_version = index, version
            return index

    def locate(self, lon: float, lat: float) -> GridChain | None:
        """The chain of units at a WGS-84 point (None outside every district)."""
        return self.grid_index().lookup(lon, lat)

    def station(self, mn: str) -> Json | None:
        """The active monitoring station whose HJ 212 MN is `mn`, or None."""
        record = self.get("station", mn)
        return record if record is not None and record.get("active", True) else None


def cells_from_records(divisions: dict[str, Json], grids: dict[str, Json]) -> list[Cell]:
    """Index cells for every active division below the city that has an area, and every active grid.

    Parents: a district hangs off nothing, a street off its district, a community off its street, a
    grid or special grid off its community, a micro-grid off its grid.
    """
    cells: list[Cell] = []
    for code, d in divisions.items():
        level = _CELL_LEVELS.get(d.get("level", ""))
        if level is None or not d.get("active", True) or d.get("area") is None:
            continue
        parent = None if level == "district" else d.get("parent_code")
        cells.append(Cell(code, level, parent, shape(d["area"]), d.get("name", "")))
    for code, g in grids.items():
        level = _CELL_LEVELS.get(g.get("level", ""))
        if level is None or not g.get("active", True):
            continue
        parent = g.get("parent_grid_code") if level == "micro_grid" else g.get("community_code")
        cells.append(Cell(code, level, parent, shape(g["area"]), g.get("name", "")))
    return cells
