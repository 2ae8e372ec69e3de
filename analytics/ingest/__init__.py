"""Bringing data in: mappings, file imports (read, validate, quarantine, merge), ERP syncs and the
app's inbox of queued jobs."""
