"""The ledger's rules: what is open on a date, when an entry was settled, FX, months, filters,
and the result of each dunning stage. KPIs and the collector's workflow read the ledger through these."""
