"""Point-in-grid lookup shared by every service: which micro-grid, grid, community, street and district
contain a point, which special-purpose grids, and which unit owns an area."""

from onegrid.geo.cell import TERRITORIAL_LEVELS, Area, Cell, GridChain, Level, Owner
from onegrid.geo.index import BatchLookup, GridIndex

__all__ = ["TERRITORIAL_LEVELS", "Area", "BatchLookup", "Cell", "GridChain", "GridIndex", "Level", "Owner"]
