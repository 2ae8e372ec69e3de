"""The figures a controller reports: aging, DSO and its companions, bad debt and roll rates, the
headline summary, dunning effectiveness and collector KPIs. Read-only; never imports the workflow."""
