"""The party-building app's 民情日记 / 走访 records (`legacy.party.v1`)."""
