"""District twin: inputs → model (survey + drone data → terrain, buildings, catalog), cameras,
pixel↔world projection, the detection worker and the desktop viewer."""

__version__ = "0.1.0"
