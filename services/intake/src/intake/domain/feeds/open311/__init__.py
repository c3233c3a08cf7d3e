"""Open311 GeoReport v2 service requests (`legacy.open311.v1`)."""
