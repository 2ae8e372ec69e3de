"""The store: connections to DuckDB or PostgreSQL, the data model, id sequences and cache keys.

Imports nothing of the engine (only `analytics.settings`): every other package builds on it."""
