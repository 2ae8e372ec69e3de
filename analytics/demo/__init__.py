"""Demo data: two years of realistic, deterministic receivables for a store to show on first start."""
