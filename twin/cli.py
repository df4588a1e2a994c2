"""The `twin` console script: the one place that wires every package together.

`server` is imported only inside the `serve` and `demo` commands; nothing else in `twin` imports
`server`, `scenes` or `web`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.markup import escape

from tiles import Compression, TilesError, TilesetOptions, Tiling
from twin.errors import TwinError
from twin.extras import require
from twin.resources import BUNDLED_MODEL, SAMPLE_SOURCE

if TYPE_CHECKING:
    from server.settings import TwinSettings

app = typer.Typer(
    name="twin",
    help="District public-safety digital twin: build 3D Tiles from survey and drone data, serve "
    "them with a live API, run detection on camera feeds, view a workspace on the desktop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def _fail(err: Exception) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    line = err.one_line() if isinstance(err, TwinError) else " ".join(str(err).split())
    console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _settings(**values: Any) -> TwinSettings:
    """The runtime settings (environment, ``.env``) with `values` over them; a bad one fails
    in one line naming its variable."""
    from pydantic import ValidationError

    from server.settings import TwinSettings

    try:
        settings = TwinSettings(**values)
        settings.token_roles  # noqa: B018 - parse TWIN_TOKENS now
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across settings: its message names them
            raise _fail(TwinError(str(first["msg"]).removeprefix("Value error, "))) from None
        name = "TWIN_" + "_".join(str(part) for part in first["loc"]).upper()
        raise _fail(TwinError(f"setting {name}: {first['msg']}")) from None
    except ValueError as exc:
        raise _fail(exc) from None
    return settings


def _camera_id(ws: Path, camera: str) -> str:
    """The catalog camera `camera` names in workspace `ws` (its element id, or its layer's own
    id); unchanged when the catalog has none (a live drone)."""
    from twin.catalog import Catalog
    from twin.workspace import open_workspace

    try:
        paths, _ = open_workspace(ws)
        return Catalog(paths.catalog).resolve(camera, ("camera",))
    except TwinError as err:
        raise _fail(err) from None


def _need(extra: str) -> None:
    """Fail in one line, naming the extra to install, when optional part `extra` is missing."""
    try:
        require(extra)
    except TwinError as err:
        raise _fail(err) from None


def _domain_errors() -> tuple[type[Exception], ...]:
    from scenes.errors import SceneError

    return (TwinError, TilesError, SceneError)


@app.command()
def build(
    src: Annotated[Path, typer.Argument(help="Source folder holding twin.yaml")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Workspace folder to (re)build")],
    tiling: Annotated[
        Tiling | None,
        typer.Option(
            help="Tiles listed in tileset.json, or 3D Tiles implicit tiling (quadtrees for "
            "buildings and terrain, octrees for point clouds) "
            f"[twin.yaml build.tiling, else {TilesetOptions.tiling}]"
        ),
    ] = None,
    compression: Annotated[
        Compression | None,
        typer.Option(
            help="glb mesh compression: none (float32), meshopt (16-bit quantised, "
            "EXT_meshopt_compression; fast to decode) or draco (KHR_draco_mesh_compression; "
            "smallest files, slower to decode) "
            f"[twin.yaml build.compression, else {TilesetOptions.compression}]"
        ),
    ] = None,
    archive: Annotated[
        bool | None,
        typer.Option(
            "--archive/--no-archive",
            help="Also write WS/tiles.3tz "
            f"[twin.yaml build.archive, else {'yes' if TilesetOptions.archive else 'no'}]",
        ),
    ] = None,
    lod: Annotated[
        bool | None,
        typer.Option(
            "--lod/--no-lod",
            help="Coarse levels of detail above the full buildings "
            f"[twin.yaml build.lod, else {'yes' if TilesetOptions.lod else 'no'}]",
        ),
    ] = None,
    source_date_epoch: Annotated[
        int | None,
        typer.Option(
            envvar="SOURCE_DATE_EPOCH",
            hidden=True,
            help="Build time as Unix seconds, for reproducible builds",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail when an input needed fixing: a feature skipped, a footprint repaired, "
            "a building height refused as implausible"
        ),
    ] = False,
) -> None:
    """Build a workspace from a source folder (atomic: on failure WS is left as it was).
    Options given here override twin.yaml's build: keys. The rule file is checked against the
    built catalog as the server will, so a servable WS is never replaced by one that is not."""
    from scenes.check import check_rule_file
    from twin.builder.fixes import summary_lines
    from twin.builder.pipeline import build_workspace

    given = {"tiling": tiling, "compression": compression, "archive": archive, "lod": lod}
    options = {key: value for key, value in given.items() if value is not None}
    built_at = None if source_date_epoch is None else datetime.fromtimestamp(source_date_epoch, UTC)
    try:
        manifest = build_workspace(src, out, console=console, options=options, built_at=built_at,
                                   strict=strict, check_rules=check_rule_file)  # fmt: skip
    except _domain_errors() as err:
        raise _fail(err) from None
    counts = [f"{n} {kind}" for kind, n in sorted(manifest.counts.items())]
    points = sum(int(cloud["points"]) for cloud in manifest.report.get("pointcloud", []))
    if points:
        counts.append(f"{points:,} points")
    console.print(f"[green]built[/] {out}: {', '.join(counts)}", soft_wrap=True)
    for line in summary_lines(manifest.report):
        console.print(f"  [yellow]fixed[/] {line}", soft_wrap=True, highlight=False)


@app.command()
def serve(
    ws: Annotated[Path, typer.Argument(help="Workspace folder (from 'twin build')")],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes on the port (more than 1 needs TWIN_DATABASE_URL "
            "and TWIN_BUS_URL)",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Serve a workspace: API, 3D Tiles, live WebSocket and the war-room page at /."""
    from server.app import serve as run_server

    settings = _settings(host=host, port=port, workers=workers)
    try:
        run_server(ws, settings=settings)
    except _domain_errors() as err:
        raise _fail(err) from None


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    rebuild: Annotated[bool, typer.Option(help="Rebuild the sample even if cached")] = False,
) -> None:
    """Build the bundled sample district (once, cached), serve it and replay live feeds."""
    _need("detect")
    from twin.demo import run_demo

    _settings()  # the environment's settings fail here, in one line
    try:
        run_demo(SAMPLE_SOURCE, host=host, port=port, rebuild=rebuild, console=console)
    except _domain_errors() as err:
        raise _fail(err) from None


@app.command()
def detect(
    source: Annotated[
        str | None, typer.Argument(help="Video file, image folder, image or stream URL")
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="Camera id: its element id or its layer's own id"),
    ] = None,
    model: Annotated[Path, typer.Option(help="Detector model (any ultralytics format)")] = (
        BUNDLED_MODEL
    ),
    server: Annotated[str, typer.Option(help="Twin server URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="Bearer token with the ingest role")] = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Workspace to ray-cast on its terrain (else flat ground)")
    ] = None,
    loop: Annotated[int, typer.Option(help="Play the source this many times (0 = forever)")] = 1,
    fps: Annotated[float, typer.Option(help="Frames per second for image folders")] = 2.0,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML list of feeds {source, camera, model?, fps?}: one worker each"),
    ] = None,
    enrich: Annotated[
        bool,
        typer.Option(
            "--plates/--no-plates",
            help="Read licence plates (PP-OCR) and run vehicle classifiers (truck cover) on "
            "vehicle crops, once a second per track",
        ),
    ] = False,
) -> None:
    """Detect and track people and vehicles and send them to the server as observations:
    SOURCE with --camera, or every feed of --config in its own supervised worker process."""
    _need("detect")
    import signal

    from twin.live.detect import DetectionJob, run_detection
    from twin.live.enrich import CropEnricher
    from twin.live.feeds import run_feeds

    # Ctrl+C and a service manager's stop both end the run after sending what is left, even
    # when the command was started with SIGINT ignored (a background job of a shell).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)

    if config is not None and (source is not None or camera is not None):
        raise _fail(TwinError("give either --config or SOURCE with --camera, not both"))
    if config is not None:
        try:
            run_feeds(
                config, model=model, fps=fps, loop=loop, server=server, token=token,
                workspace=workspace, console=console,
            )  # fmt: skip
        except _domain_errors() as err:
            raise _fail(err) from None
        return
    if source is None or camera is None:
        raise _fail(TwinError("give SOURCE and --camera, or --config FEEDS.yaml"))
    try:
        enricher = CropEnricher.standard() if enrich else None
        job = DetectionJob(
            source=source, camera=camera, model=model, server=server, token=token,
            workspace=workspace, loop=loop, fps=fps,
        )  # fmt: skip
        stats = run_detection(job, console=console, enricher=enricher)
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(f"[green]done[/]: {stats.summary()}", highlight=False, soft_wrap=True)


@app.command()
def view(
    ws: Annotated[Path, typer.Argument(help="Workspace folder")],
    server: Annotated[
        str | None,
        typer.Option(help="Twin server URL for live entities, alerts, drones and records"),
    ] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token with the viewer role")] = None,
    screenshot: Annotated[
        Path | None, typer.Option(help="Render offscreen to this PNG and exit")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Screenshot size WIDTHxHEIGHT in pixels [1600x1000]")
    ] = None,
    select: Annotated[
        str | None, typer.Option(help="Element id to highlight and frame, e.g. building:123")
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Camera (or drone) id to look through")] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(
            help="Layers to show, comma-separated or repeated (default: all): "
            "terrain, buildings, pointcloud, roads, water, jurisdictions, sites, "
            "sensors, cameras, footprints, entities, alerts, drones"
        ),
    ] = None,
    color_by: Annotated[
        Literal["height", "kind", "jurisdiction"],
        typer.Option("--color-by", help="Colour buildings by height, kind or jurisdiction"),
    ] = "height",
    points: Annotated[
        Literal["rgb", "class"], typer.Option(help="Colour point clouds by RGB or by class")
    ] = "rgb",
) -> None:
    """Desktop 3D viewer of a workspace: layers, search, click for a record, measuring,
    cameras; with --server the live layer; with --screenshot an offscreen PNG."""
    _need("viewer")
    from twin.viewer.app import view as run_viewer
    from twin.viewer.offscreen import Shot, parse_size

    if screenshot is not None and screenshot.suffix.lower() != ".png":
        raise _fail(TwinError(f"--screenshot {screenshot}: the screenshot is a PNG file",
                              hint="give a name ending in .png"))  # fmt: skip
    names = [n.strip() for item in layers or [] for n in item.split(",") if n.strip()]
    try:
        shot = Shot(
            size=parse_size(size) if size else None, select=select,
            camera=_camera_id(ws, camera) if camera else None,
            layers=names or None, colour_by=color_by, point_colours=points, server=server,
            token=token,
        )  # fmt: skip
        run_viewer(ws, shot, screenshot=screenshot)
    except _domain_errors() as err:
        raise _fail(err) from None


camera_app = typer.Typer(help="Camera models: calibration from point pairs.", no_args_is_help=True)
app.add_typer(camera_app, name="camera")


@camera_app.command("calibrate")
def camera_calibrate(
    ws: Annotated[Path, typer.Argument(help="Workspace folder")],
    camera_id: Annotated[
        str, typer.Argument(metavar="ID", help="Camera id: its element id or its layer's own id")
    ],
    pairs: Annotated[
        Path, typer.Argument(help="CSV with columns u, v (px), lon, lat (deg), height (m)")
    ],
    fit_focal: Annotated[bool, typer.Option(help="Also fit the focal length (6+ pairs)")] = False,
) -> None:
    """Solve a camera's pose from 4+ pixel/world point pairs and save it in WS/cameras.json."""
    from twin.cameras.pairs import read_pairs
    from twin.cameras.rig import CameraRig
    from twin.catalog import Catalog
    from twin.workspace import open_workspace

    try:
        paths, _ = open_workspace(ws)
        rig = CameraRig(paths.root, Catalog(paths.catalog))
        result = rig.calibrate(camera_id, read_pairs(pairs), fit_focal=fit_focal)
    except _domain_errors() as err:
        raise _fail(err) from None
    cam = result.camera
    console.print(
        f"[green]calibrated[/] {camera_id} from {len(result.residuals_px)} pairs: reprojection "
        f"error {result.rms_px:.2f} px RMS, {result.max_px:.2f} px max; lon {cam.lon:.7f}, "
        f"lat {cam.lat:.7f}, height {cam.ground_height + cam.mount_height:.2f} m, heading "
        f"{cam.heading:.2f}, pitch {cam.pitch:.2f}, roll {cam.roll:.2f}, hfov {cam.hfov:.2f} deg "
        f"(± {result.position_sigma_m:.2f} m, ± {result.angle_sigma_deg:.3f} deg)",
        soft_wrap=True,
        highlight=False,
    )


deploy_app = typer.Typer(help="Write configuration for running a workspace in production.")
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("nginx")
def deploy_nginx(
    ws: Annotated[Path, typer.Argument(help="Workspace folder (from 'twin build')")],
    listen: Annotated[str, typer.Option(help="What nginx listens on: PORT or HOST:PORT")],
    upstream: Annotated[
        str, typer.Option(help="The twin serve processes: HOST:PORT[,HOST:PORT...]")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for nginx.conf, logs, temp")],
    user: Annotated[
        str | None,
        typer.Option(
            help="Account nginx workers run as when nginx starts as root (must read "
            "WS/tiles; default: yours when you are root)"
        ),
    ] = None,
) -> None:
    """Write DIR/nginx.conf: tiles straight from WS/tiles (ETag, 304, gzip_static, CORS,
    caching), the API, /ws/live and the page proxied to the upstreams (least connections).
    Run it with: nginx -p DIR -c nginx.conf"""
    from server.nginx import NginxDeployment, default_user, parse_upstreams, write_config

    try:
        deployment = NginxDeployment(
            ws, listen, parse_upstreams(upstream), out, user=user or default_user()
        )
        target = write_config(deployment)
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(f"[green]wrote[/] {target}; run: nginx -p {out.resolve()} -c nginx.conf")


drone_app = typer.Typer(help="Drones: flight logs.", no_args_is_help=True)
app.add_typer(drone_app, name="drone")


@drone_app.command("import-srt")
def drone_import_srt(
    flight: Annotated[Path, typer.Argument(help="DJI SRT subtitle file of the flight")],
    drone: Annotated[str, typer.Option(help="Drone id on the server, e.g. drone:m3-01")],
    video: Annotated[
        Path | None, typer.Option(help="The flight's video: its frames go with the telemetry")
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="Twin server URL (without it: write a GeoJSON track)")
    ] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token with the ingest role")] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="GeoJSON track file [FLIGHT.geojson]")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(help="Workspace whose surface under the first fix is the take-off height"),
    ] = None,
    takeoff_height: Annotated[
        float | None,
        typer.Option(help="Take-off point's WGS84 ellipsoidal height, m (overrides --workspace)"),
    ] = None,
    tz: Annotated[
        str | None, typer.Option(help="Time zone of the drone's clock, e.g. Asia/Shanghai [local]")
    ] = None,
    pitch: Annotated[
        float, typer.Option(help="Camera pitch when the log has no gimbal angles, deg")
    ] = -90.0,
    hfov: Annotated[
        float | None, typer.Option(help="Horizontal field of view, deg [from the focal length]")
    ] = None,
    every: Annotated[float, typer.Option(help="Seconds of video between samples sent")] = 0.5,
    speed: Annotated[
        float, typer.Option(help="Replay speed (1: real time, 0: as fast as possible)")
    ] = 1.0,
) -> None:
    """Read a DJI SRT flight log (Mavic 3 / Mini 3 Pro / Mavic 4 Pro / Avata, Air 2S, Mavic
    Pro / Phantom 4, Matrice 300 RTK): with --server, send its telemetry (and --video frames)
    in step with the video, frame time = SRT time; without, write a GeoJSON track. Unreadable
    blocks are counted and reported."""
    from twin.flights.pose import PoseOptions, flight_poses, surface_height
    from twin.flights.replay import VideoFrames, replay_flight
    from twin.flights.srt import read_srt
    from twin.flights.track import write_track

    try:
        flight_log = read_srt(flight)
        first = flight_log.samples[0]
        height = takeoff_height
        if height is None and workspace is not None:
            height = surface_height(workspace, first.lon, first.lat)
        frames = VideoFrames(video) if video is not None else None
        options = PoseOptions(
            takeoff_height=height, pitch=pitch, hfov=hfov, tz=_zone(tz),
            image_size=frames.size if frames else PoseOptions.image_size,
        )  # fmt: skip
        poses = flight_poses(flight_log.samples, options)
        console.print(f"{flight}: {flight_log.summary()}", highlight=False, soft_wrap=True)
        if server is None:
            target = out or flight.with_suffix(".geojson")
            write_track(target, poses, drone, flight_log.family)
            console.print(f"[green]wrote[/] {target}: {len(poses)} points", highlight=False)
            return
        stats = replay_flight(
            poses, drone, server=server, token=token, video=frames, every_s=every, speed=speed
        )
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(
        f"[green]sent[/] {stats.telemetry} telemetry samples and {stats.frames} frames of "
        f"{drone} to {server}; {stats.failed} refused or unsent",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


def _zone(name: str | None) -> tzinfo:
    """The time zone `name` (IANA), or this machine's local zone for None."""
    if name is None:
        return datetime.now().astimezone().tzinfo or UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(TwinError(f"unknown time zone '{name}'", hint="e.g. Asia/Shanghai")) from None


keys_app = typer.Typer(help="Signing keys of exchange bundles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for twin.key, twin.pub")],
) -> None:
    """Make an Ed25519 key pair: DIR/twin.key (private, mode 600: keep it on the exporting
    network) and DIR/twin.pub (give it to the importing network as --trust)."""
    from twin.exchange.keys import fingerprint, generate_keys, load_public_key

    try:
        private, public = generate_keys(folder)
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(
        f"[green]wrote[/] {private} and {public} (key {fingerprint(load_public_key(public))})",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


@app.command("export")
def export(
    ws: Annotated[Path, typer.Argument(help="Workspace folder")],
    since: Annotated[str, typer.Option(help="Start of the range, ISO 8601 (no zone: UTC)")],
    key: Annotated[Path, typer.Option(help="Private signing key (DIR/twin.key)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Bundle file to write (.twinb)")],
    until: Annotated[
        str | None, typer.Option(help="End of the range (exclusive), ISO 8601 [now]")
    ] = None,
    what: Annotated[
        str, typer.Option(help="Comma-separated: observations, alerts, watchlists")
    ] = "observations,alerts,watchlists",
) -> None:
    """Write a signed one-way exchange bundle: observations and alerts (with crops) of
    [--since, --until), from the live store and the history archive, and the watchlist
    entries (keyed hashes only)."""
    from scenes.exchange.export import ExportRequest, export_bundle
    from scenes.exchange.records import WHAT
    from twin.exchange.keys import load_private_key

    kinds = {k.strip() for k in what.split(",") if k.strip()}
    unknown = sorted(kinds - set(WHAT))
    try:
        if unknown or not kinds:
            raise TwinError(f"--what: unknown {unknown}", hint=f"choose from {', '.join(WHAT)}")
        request = ExportRequest(
            _instant(since, "--since"),
            _instant(until, "--until") if until else datetime.now(UTC),
            kinds,
        )
        if request.until <= request.since:
            raise TwinError("--until must come after --since")
        manifest = export_bundle(
            ws, out, request, key=load_private_key(key), secret=_site_secret(ws)
        )
    except _domain_errors() as err:
        raise _fail(err) from None
    counts = ", ".join(
        f"{n} {name.removesuffix('.ndjson.gz')}"
        for name, n in manifest.counts().items()
        if "/" not in name
    )
    crops = sum(1 for m in manifest.members if "/" in m.name)
    console.print(
        f"[green]wrote[/] {out} ({out.stat().st_size:,} bytes, key {manifest.signer}): "
        f"{counts}, {crops} crop(s)", highlight=False, soft_wrap=True,
    )  # fmt: skip


@app.command("import")
def import_(
    ws: Annotated[Path, typer.Argument(help="Workspace folder")],
    bundle: Annotated[Path, typer.Argument(metavar="FILE", help="Bundle file (.twinb)")],
    trust: Annotated[Path, typer.Option(help="Public key of the exporting site (twin.pub)")],
) -> None:
    """Import a bundle: verify its signature and every member's hash first (a tampered,
    truncated or unsigned bundle imports nothing), then store what the workspace does not
    hold yet (importing it again changes nothing)."""
    from scenes.exchange.importer import import_bundle
    from twin.exchange.keys import load_public_key

    try:
        report = import_bundle(ws, bundle, trusted=load_public_key(trust), secret=_site_secret(ws))
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(f"[green]imported[/] {bundle} {report.summary()}", highlight=False,
                  soft_wrap=True)  # fmt: skip


ptz_app = typer.Typer(help="PTZ cameras: follow their heads.", no_args_is_help=True)
app.add_typer(ptz_app, name="ptz")


@ptz_app.command("follow")
def ptz_follow(
    config: Annotated[Path, typer.Option(help="Feeds config; the feeds with a ptz: block")],
    server: Annotated[str, typer.Option(help="Twin server URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="Bearer token with the operator role")] = None,
) -> None:
    """Poll each PTZ head of the feeds config (ONVIF GetStatus or Hikvision ISAPI) every
    interval_s and send its pose to PUT /api/cameras/{id}/ptz when it changed, until Ctrl+C."""
    import signal
    import threading

    from twin.live.feeds import read_feeds
    from twin.live.ptz_follow import follow_all

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        heads = [(feed.camera, feed.ptz) for feed in read_feeds(config) if feed.ptz is not None]
        if not heads:
            raise TwinError(
                f"{config}: no feed has a ptz: block", hint="see twin/live/ptz_follow.py"
            )
        console.print(f"following {len(heads)} PTZ head(s); Ctrl+C stops", highlight=False)
        moves = follow_all(heads, server, token or "", stop)
    except _domain_errors() as err:
        raise _fail(err) from None
    for camera, count in sorted(moves.items()):
        console.print(f"{camera}: {count} pose(s) sent", highlight=False)


def _instant(text: str, option: str) -> datetime:
    """An ISO 8601 time as UTC (no zone: UTC)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TwinError(f"{option}: '{text}' is not an ISO 8601 time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _site_secret(ws: Path) -> bytes:
    """The site secret of workspace `ws`'s keyed hashes (settings, else WS/secret.key);
    `WorkspaceError` when `ws` is not a workspace."""
    from scenes.identifiers import site_secret
    from server.settings import TwinSettings
    from twin.workspace import open_workspace

    paths, _ = open_workspace(ws)
    return site_secret(TwinSettings().watchlist_secret, paths.secret)


def main() -> None:  # pragma: no cover - console entry for `python -m twin.cli`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
