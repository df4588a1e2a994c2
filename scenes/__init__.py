"""Scenario engine: observations in, rules over them (zones, ...), alerts out, routed to the unit
whose jurisdiction holds the place. No HTTP in here."""
