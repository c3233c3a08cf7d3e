"""Kafka building blocks: records, producer, batch consumer loop, error policy, transactional pipeline."""

from onegrid.kafka.records import BatchResult, DeadLetter, OutRecord, Record

__all__ = ["BatchResult", "DeadLetter", "OutRecord", "Record"]
