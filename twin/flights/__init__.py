"""Drone flight logs: DJI SRT subtitle telemetry (`srt`), the heights and view it gives
(`pose`), a GeoJSON track (`track`) and a replay to the twin server in step with the video
(`replay`)."""
