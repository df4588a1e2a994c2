"""Signed one-way exchange bundles between isolated networks: Ed25519 keys (`keys`) and the
bundle file format — a tar of gzip'd NDJSON members and alert crops with a signed manifest of
their counts and SHA-256 (`bundle`). What goes in and how it is imported: `scenes.exchange`."""
