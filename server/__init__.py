"""FastAPI app: tiles, elements, pick/search, ingest, live WebSocket, alerts, auth.
A thin layer over `twin`, `tiles` and `scenes`; no domain logic here."""
