"""Pure parts of the bridges: HJ 212 stream framing and replies, CAP index feeds, record ids."""
