"""Kafka building blocks: records, producer, batch consumer loop, error policy, transactional pipeline."""

from onegrid.kafka import fixes
from onegrid.kafka.records import BatchResult, DeadLetter, OutRecord, Record

fixes.apply()  # before any client of ours exists (see onegrid.kafka.fixes)

__all__ = ["BatchResult", "DeadLetter", "OutRecord", "Record"]
