"""CAP 1.2 alerts from the emergency-management network (`legacy.cap.v1`)."""
