"""Champion/challenger experiments: which dunning policy really works, with the uplift and its confidence.

`assignment` (the stored, never recomputed arm of each customer), `design` (sample size, detectable
effect, duration), `results` (the primary metric per arm, intervals, SRM, the sequential verdict),
`lifecycle` (start, stop, promote: role-checked and audited).
"""
