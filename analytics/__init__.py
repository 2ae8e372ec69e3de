"""AR Desk engine: schema, ingestion, KPI queries, dunning, outreach and follow-ups.

Nothing in this package imports streamlit: the CLI, the tests and the benchmarks use it directly.
"""
