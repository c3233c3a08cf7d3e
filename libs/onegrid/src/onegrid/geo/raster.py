"""A two-level raster of tiles over disjoint regions: most point-in-polygon questions become array reads.

Every coarse tile is wholly inside one region, wholly outside all of them, or refined: split into
``refine x refine`` sub-tiles, each inside one region, outside, or MIXED (a region boundary may pass
through it, so the exact geometry must decide). A (sub-)tile is marked as crossed when a vertex of a
boundary densified to half a sub-tile lies in it or within 1e-6 sub-tile of it, or when two consecutive
vertices lie in diagonal sub-tiles (the segment may then cut a corner of either orthogonal neighbour).
An unmarked tile contains no boundary point, so its centre decides it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from onegrid.geo.cell import Area

OUTSIDE = -1
MIXED = -2
_FIRST_BLOCK = -3  # coarse labels <= this point to block (_FIRST_BLOCK - label) of sub-tiles
DEFAULT_MAX_TILES = 4_000_000  # coarse tiles: 16 MB of int32
DEFAULT_REFINE = 4


@dataclass(frozen=True, slots=True)
class TileRaster:
    """Coarse tile (ix, iy) has its lower-left corner at ``(x0 + ix * tile, y0 + iy * tile)``."""

    x0: float
    y0: float
    tile: float
    refine: int
    labels: np.ndarray  # (ny, nx) int32: region number, OUTSIDE, or a block reference
    blocks: np.ndarray  # (blocks, refine, refine) int32: region number, OUTSIDE or MIXED

    @classmethod
    def build(
        cls, regions: Sequence[Area], max_tiles: int = DEFAULT_MAX_TILES, refine: int = DEFAULT_REFINE
    ) -> TileRaster:
        """Raster over the regions' bounds with at most about ``max_tiles`` coarse tiles."""
        if not regions:
            return cls(
                0.0, 0.0, 1.0, refine, np.full((1, 1), OUTSIDE, np.int32), np.zeros((0, refine, refine))
            )
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(regions))
        tile = max(math.sqrt(max((maxx - minx) * (maxy - miny), 1e-18) / max_tiles), 1e-7)
        # one tile of margin so that no boundary vertex falls on the raster's edge
        x0, y0 = minx - tile, miny - tile
        shape = (math.ceil((maxy - y0) / tile) + 2, math.ceil((maxx - x0) / tile) + 2)
        raster = cls(x0, y0, tile, refine, np.full(shape, OUTSIDE, np.int32), np.zeros((0, refine, refine)))
        lines = shapely.get_parts(shapely.get_parts(shapely.boundary(np.asarray(regions, dtype=object))))
        coords, part = shapely.get_coordinates(
            shapely.segmentize(lines, max_segment_length=tile / refine / 2), return_index=True
        )
        gx, gy = raster._crossed(coords[:, 0], coords[:, 1], part)
        coarse = np.zeros(shape, dtype=bool)
        coarse[gy // refine, gx // refine] = True
        raster._fill_coarse(regions, coarse)
        block_of = np.full(shape, -1, dtype=np.intp)
        block_of[coarse] = np.arange(int(coarse.sum()))
        raster.labels[coarse] = _FIRST_BLOCK - block_of[coarse]
        blocks = np.full((int(coarse.sum()), refine, refine), OUTSIDE, dtype=np.int32)
        fine_mixed = np.zeros(blocks.shape, dtype=bool)
        fine_mixed[block_of[gy // refine, gx // refine], gy % refine, gx % refine] = True
        raster._fill_fine(regions, block_of, blocks, fine_mixed)
        blocks[fine_mixed] = MIXED
        object.__setattr__(raster, "blocks", blocks)
        return raster

    def classify(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Label of each point's (sub-)tile, int32; OUTSIDE for points off the raster or NaN."""
        ny, nx = self.labels.shape
        fx = (xs - self.x0) / self.tile
        fy = (ys - self.y0) / self.tile
        on = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
        # truncation is floor for non-negative values; off-raster points read tile 0 and are overwritten
        ix = np.where(on, fx, 0).astype(np.intp)
        iy = np.where(on, fy, 0).astype(np.intp)
        out: np.ndarray = self.labels.ravel()[iy * nx + ix]
        out[~on] = OUTSIDE
        fine = np.flatnonzero(out <= _FIRST_BLOCK)
        if fine.size:
            sx = self._sub(fx[fine], ix[fine])
            sy = self._sub(fy[fine], iy[fine])
            out[fine] = self.blocks[_FIRST_BLOCK - out[fine], sy, sx]
        return out

    def _sub(self, f: np.ndarray, i: np.ndarray) -> np.ndarray:
        sub: np.ndarray = np.minimum(((f - i) * self.refine).astype(np.intp), self.refine - 1)
        return sub

    def _global(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sub-tile indices over the whole raster, computed exactly as classify() computes them."""
        ny, nx = self.labels.shape
        fx = np.clip((xs - self.x0) / self.tile, 0, nx - 1e-9)
        fy = np.clip((ys - self.y0) / self.tile, 0, ny - 1e-9)
        ix, iy = fx.astype(np.intp), fy.astype(np.intp)
        return ix * self.refine + self._sub(fx, ix), iy * self.refine + self._sub(fy, iy)

    def _crossed(self, xs: np.ndarray, ys: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eps = self.tile / self.refine * 1e-6
        marks = [self._global(xs + dx, ys + dy) for dx in (-eps, eps) for dy in (-eps, eps)]
        gx, gy = self._global(xs, ys)
        step = (part[1:] == part[:-1]) & (gx[1:] != gx[:-1]) & (gy[1:] != gy[:-1])
        marks += [(gx[:-1][step], gy[1:][step]), (gx[1:][step], gy[:-1][step])]
        return np.concatenate([m[0] for m in marks]), np.concatenate([m[1] for m in marks])

    def _window(self, region: Area) -> tuple[slice, slice]:
        minx, miny, maxx, maxy = region.bounds
        ny, nx = self.labels.shape
        ix0, ix1 = (min(max(int((v - self.x0) / self.tile), 0), nx - 1) for v in (minx, maxx))
        iy0, iy1 = (min(max(int((v - self.y0) / self.tile), 0), ny - 1) for v in (miny, maxy))
        return slice(iy0, iy1 + 1), slice(ix0, ix1 + 1)

    def _fill_coarse(self, regions: Sequence[Area], crossed: np.ndarray) -> None:
        for number, region in enumerate(regions):
            rows_slice, cols_slice = self._window(region)
            rows, cols = np.nonzero(~crossed[rows_slice, cols_slice])
            rows, cols = rows + rows_slice.start, cols + cols_slice.start
            inside = shapely.contains_xy(
                region, self.x0 + (cols + 0.5) * self.tile, self.y0 + (rows + 0.5) * self.tile
            )
            self.labels[rows[inside], cols[inside]] = number

    def _fill_fine(
        self, regions: Sequence[Area], block_of: np.ndarray, blocks: np.ndarray, crossed: np.ndarray
    ) -> None:
        k = self.refine
        for number, region in enumerate(regions):
            rows_slice, cols_slice = self._window(region)
            window = block_of[rows_slice, cols_slice]
            rows, cols = np.nonzero(window >= 0)
            if rows.size == 0:
                continue
            ids = window[rows, cols]
            block, sy, sx = np.nonzero(~crossed[ids])
            x = self.x0 + (cols[block] + cols_slice.start + (sx + 0.5) / k) * self.tile
            y = self.y0 + (rows[block] + rows_slice.start + (sy + 0.5) / k) * self.tile
            inside = shapely.contains_xy(region, x, y)
            blocks[ids[block[inside]], sy[inside], sx[inside]] = number
