"""An RTSP server on loopback for the tests: GStreamer's (Debian `gir1.2-gst-rtsp-server-1.0`,
run with the system Python and `python3-gi`), serving an H.264 MP4 clip at
``rtsp://127.0.0.1:PORT/clip`` in real time, each client from the clip's start.

    /usr/bin/python3 tests/rtsp_server.py PORT CLIP.mp4

Prints ``ready`` once it listens; runs until terminated."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, clip = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={clip} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 "
    "config-interval=1 )"
)
server.get_mount_points().add_factory("/clip", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
