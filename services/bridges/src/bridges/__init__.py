"""The bridges: each legacy network's own way of sending (HJ 212 over TCP, CAP index feeds and
pushes, HTTP posts of the public-safety and party-building systems) onto its `legacy.*` topic,
bytes unchanged, acknowledged to the sender only after Kafka has the record (acks=all)."""
