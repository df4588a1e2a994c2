"""`twin demo`: build the bundled sample district once (cached by content hash), serve it, and
feed it live: the scripted scenario of `twin.live.scenario` (traffic, a crowd, a loiterer, a
listed plate, a wanted person, an uncovered muck truck, sensor readings: every shipped app and
board fires within a minute), plus real YOLO on real frames through the detection path
(`ultralytics/assets/bus.jpg` panned across a wider canvas, played as the road camera
`camera:cam-bund-road`) and two PTZ heads sweeping.

The demo's tokens are created once and kept in the cache (`demo-tokens.json`, mode 0600), so a
wall display opened on the printed wall URL resumes by itself after the demo restarts. Alerts
come from the shipped apps only (the sample's own rule file is not loaded): each belongs to an
app and a board.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console

from server.settings import TwinSettings
from twin.builder.pipeline import build_workspace
from twin.errors import TwinError
from twin.resources import BUNDLED_MODEL

DEMO_CAMERA = "camera:cam-bund-road"
DEMO_FRAMES = 24
DEMO_PTZ = {"camera:cam-lujiazui-ptz": (135.0, -15.0), "camera:cam-pearl-eagle": (247.0, -20.0)}
"""PTZ cameras of the sample swept by `SimulatedPtz`: centre pan (= heading, deg) and tilt."""
DEMO_ROLES = ("operator", "viewer", "ingest", "admin")


def cache_root() -> Path:
    """Where the demo keeps its built workspace and frames ($XDG_CACHE_HOME/district-twin)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "district-twin"


def source_digest(src: Path) -> str:
    """SHA-256 over every file of the source folder (names and bytes) plus the package version."""
    from twin import __version__

    digest = hashlib.sha256(__version__.encode())
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(src)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_workspace(src: Path, *, rebuild: bool, console: Console) -> Path:
    """Build `src` into the cache unless a build of the same content is already there."""
    ws = cache_root() / "sample-ws"
    stamp = cache_root() / "sample-ws.sha256"
    digest = source_digest(src)
    if rebuild or not stamp.is_file() or stamp.read_text() != digest or not ws.is_dir():
        console.print(f"building the sample district into {ws} …")
        build_workspace(src, ws, console=console)
        stamp.write_text(digest)
    else:
        console.print(f"using the cached sample build {ws}")
    return ws


def pan_frames(out: Path, count: int = DEMO_FRAMES) -> Path:
    """Write `count` frames that pan across bus.jpg and its mirror image (real pixels, synthetic
    camera motion) into `out`; return the folder."""
    import cv2
    import ultralytics

    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    if image is None:
        raise TwinError("cannot read ultralytics/assets/bus.jpg", hint="reinstall ultralytics")
    width = image.shape[1]
    canvas = np.concatenate([image, image[:, ::-1]], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    steps = np.linspace(0, width // 2, count).astype(int)
    for index, shift in enumerate(np.concatenate([steps, steps[::-1]])):
        cv2.imwrite(str(out / f"frame-{index:03d}.jpg"), canvas[:, shift : shift + width])
    return out


def _sweep_ptz(server: str, token: str, camera_id: str, pan: float, tilt: float) -> None:
    """Turn a sample PTZ camera back and forth (simulated head) through the live API."""
    from twin.cameras.ptz import SimulatedPtz
    from twin.live.ptz_follow import follow_ptz

    follow_ptz(server, token, camera_id, SimulatedPtz(pan, tilt), stop=threading.Event())


def _replay(server: str, token: str, frames: Path, ws: Path, console: Console) -> None:
    """Run the detector over the frames forever (the server is up)."""
    from twin.live.detect import DetectionJob, run_detection

    try:
        job = DetectionJob(
            source=str(frames), camera=DEMO_CAMERA, model=BUNDLED_MODEL, server=server,
            token=token, workspace=ws, loop=0, fps=2.0,
        )  # fmt: skip
        run_detection(job, console=console)
    except TwinError as err:
        console.print(f"[red]live replay stopped:[/] {err.one_line()}")


def _wait_for(server: str, timeout_s: float = 60.0) -> bool:
    """Whether the server answers /healthz within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(server + "/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.5)
    return False


def demo_tokens(path: Path) -> dict[str, str]:
    """The demo's token per role (operator, viewer, ingest, admin), created once in `path`."""
    if path.is_file():
        tokens: dict[str, str] = json.loads(path.read_text())
        if set(tokens) == set(DEMO_ROLES):
            return tokens
    tokens = {role: f"demo-{role}-{secrets.token_urlsafe(9)}" for role in DEMO_ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(tokens))
    return tokens


def demo_pages(url: str, tokens: dict[str, str]) -> dict[str, str]:
    """The demo's page URLs: the operator's desk, and the wall (viewer token, wall mode)."""
    return {
        "desk": f"{url}/?token={tokens['operator']}",
        "wall": f"{url}/?token={tokens['viewer']}&wall=1",
    }


def _feeds(url: str, tokens: dict[str, str], frames: Path, ws: Path, console: Console) -> None:
    """Once the server answers: configure the apps, then run the scenario, the detector and
    the PTZ sweeps (each on its own daemon thread)."""
    from twin.live.scenario import ScenarioFeed, configure

    if not _wait_for(url):
        console.print("[red]the demo server did not answer: no live feeds[/]")
        return
    try:
        configure(url, tokens["admin"])
    except TwinError as err:
        console.print(f"[red]demo apps not configured:[/] {err.one_line()}")
    feed = ScenarioFeed(url, tokens["ingest"])
    threading.Thread(target=feed.run, args=(threading.Event(),), daemon=True,
                     name="scenario").start()  # fmt: skip
    for camera_id, (pan, tilt) in DEMO_PTZ.items():
        args = (url, tokens["operator"], camera_id, pan, tilt)
        threading.Thread(target=_sweep_ptz, args=args, daemon=True, name=camera_id).start()
    _replay(url, tokens["ingest"], frames, ws, console)


def run_demo(src: Path, *, host: str, port: int, rebuild: bool, console: Console) -> None:
    """Build (cached), serve and feed. Blocks until interrupted. The port is taken first: a
    busy one fails here, before a URL and tokens are printed and feeds started."""
    from server.app import listen, serve

    sock = listen(host, port)
    ws = cached_workspace(src, rebuild=rebuild, console=console)
    frames = pan_frames(cache_root() / "frames")
    tokens = demo_tokens(cache_root() / "demo-tokens.json")
    no_rules = cache_root() / "demo-rules.yaml"
    no_rules.write_text("rules: []\n")
    base = TwinSettings()
    mine = ",".join(f"{token}:{role}" for role, token in tokens.items())
    settings = TwinSettings(tokens=",".join(filter(None, [base.tokens, mine])), host=host,
                            port=port, rules=no_rules)  # fmt: skip
    url = f"http://{host}:{port}"
    threading.Thread(target=_feeds, args=(url, tokens, frames, ws, console), daemon=True,
                     name="feeds").start()  # fmt: skip
    pages = demo_pages(url, tokens)
    console.print(
        f"\n[bold green]District twin demo[/]\n"
        f"  desk (operator): [link]{pages['desk']}[/link]\n"
        f"  wall (viewer, fullscreen/kiosk): [link]{pages['wall']}[/link]\n"
        f"  English: add &lang=en · ingest token: {tokens['ingest']}\n"
        f"  live feeds: the sample scenario (every app), real YOLO on {frames} as {DEMO_CAMERA},"
        f" PTZ sweeps; Ctrl+C to stop\n",
        highlight=False,
        soft_wrap=True,
    )
    serve(ws, settings=settings, sock=sock)
