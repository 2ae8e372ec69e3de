"""The collector's work: the worklist, the customer's story, follow-ups, assignments, dunning
schedules and runs, outreach (email and letters) and statements."""
