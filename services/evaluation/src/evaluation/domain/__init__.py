"""The pure core of evaluation (考核): lifecycle events folded into case facts, facts aggregated into
metric rows per dimension and period, rankings and scopes. No framework imports (a test enforces it)."""
