"""One router per concern; `server.app.create_app` registers them."""
