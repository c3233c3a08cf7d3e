"""The legacy feeds, one folder each: a feed's parser (contract in contracts/legacy/) and the mapping of
its records to Reports. What the feeds share (placement, severity, local time, errors) stays in
`intake.domain`."""
