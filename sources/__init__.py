"""Getting data: city configuration, fetching into the raw landing zone, parsing snapshots."""
