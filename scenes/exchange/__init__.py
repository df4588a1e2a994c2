"""Exchange bundles of a workspace (`twin.exchange.bundle` is the file format): `export`
writes observations, alerts (with their evidence crops) and watchlist entries of a time range,
read through the history (live store and archive alike); `importer` verifies a bundle whole
and then stores what the workspace does not hold yet. `records` names the members and their
record types."""
