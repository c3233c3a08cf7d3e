"""The dispatch domain: the case lifecycle as a state machine, tiered routing, SLA deadlines and
escalation, the messages dispatch emits. Pure: no Kafka, database or web framework imports."""
