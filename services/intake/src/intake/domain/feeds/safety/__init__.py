"""The 综治/平安 safety system's event reports (`legacy.safety.v1`)."""
