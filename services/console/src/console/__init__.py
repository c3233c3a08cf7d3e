"""The operations console (运行监控台): throughput, lag, dead letters and quarantine, SLA, the map of
open cases, case pages with their audit trail and trace, and a local OTLP trace receiver."""
