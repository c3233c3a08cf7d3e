"""Grid workers' patrol reports from the phone app (`legacy.patrol.v1`)."""
