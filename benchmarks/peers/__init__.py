"""One small adapter module per peer format. Each exposes `name`, `encode(events)` and
`decode(payloads) -> pl.DataFrame` (an event table, checked against cemreplay's)."""
