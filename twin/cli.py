"""The `twin` console script: the one place that wires every package together.

`server` is imported only inside the `serve` and `demo` commands; nothing else in `twin` imports
`server`, `scenes` or `web`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from twin.errors import TwinError

app = typer.Typer(
    name="twin",
    help="District public-safety digital twin: build 3D Tiles from survey and drone data, serve "
    "them with a live API, run detection on camera feeds, view a workspace on the desktop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SOURCE = REPO_ROOT / "data" / "sample"
BUNDLED_MODEL = REPO_ROOT / "models" / "yolov8n_int8.tflite"


def _fail(err: Exception) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    line = err.one_line() if isinstance(err, TwinError) else " ".join(str(err).split())
    console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _domain_errors() -> tuple[type[Exception], ...]:
    from scenes.errors import SceneError
    from tiles.errors import TilesError

    return (TwinError, TilesError, SceneError)


@app.command()
def build(
    src: Annotated[Path, typer.Argument(help="Source folder holding twin.yaml")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Workspace folder to (re)build")],
) -> None:
    """Build a workspace from a source folder (atomic: on failure WS is left as it was)."""
    from twin.build.pipeline import build_workspace

    try:
        manifest = build_workspace(src, out, console=console)
    except _domain_errors() as err:
        raise _fail(err) from None
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(manifest.counts.items()))
    console.print(f"[green]built[/] {out}: {counts}", soft_wrap=True)


@app.command()
def serve(
    ws: Annotated[Path, typer.Argument(help="Workspace folder (from 'twin build')")],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve a workspace: API, 3D Tiles, live WebSocket and the war-room page at /."""
    from server.app import serve as run_server
    from twin.settings import TwinSettings

    try:
        run_server(ws, settings=TwinSettings(host=host, port=port))
    except _domain_errors() as err:
        raise _fail(err) from None


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    rebuild: Annotated[bool, typer.Option(help="Rebuild the sample even if cached")] = False,
) -> None:
    """Build the bundled sample district (once, cached), serve it and replay live feeds."""
    from twin.demo import run_demo

    try:
        run_demo(SAMPLE_SOURCE, host=host, port=port, rebuild=rebuild, console=console)
    except _domain_errors() as err:
        raise _fail(err) from None


@app.command()
def detect(
    source: Annotated[str, typer.Argument(help="Video file, image folder, image or stream URL")],
    camera: Annotated[str, typer.Option("--camera", help="Camera element id (from the catalog)")],
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
) -> None:
    """Detect and track people and vehicles and send them to the server as observations."""
    from twin.live.detect import run_detection

    try:
        stats = run_detection(
            source, camera, model=model, server=server, token=token, workspace=workspace,
            loop=loop, fps=fps, console=console,
        )  # fmt: skip
    except _domain_errors() as err:
        raise _fail(err) from None
    console.print(
        f"[green]done[/]: {stats.frames} frames, {stats.observations} observations sent, "
        f"{stats.fps:.1f} fps"
    )


@app.command()
def view(
    ws: Annotated[Path, typer.Argument(help="Workspace folder")],
    screenshot: Annotated[
        Path | None, typer.Option(help="Render offscreen to this PNG and exit")
    ] = None,
) -> None:
    """Desktop 3D viewer of a workspace; click a building to print its record."""
    from twin.viewer.app import view as run_viewer

    try:
        run_viewer(ws, screenshot=screenshot)
    except _domain_errors() as err:
        raise _fail(err) from None


def main() -> None:  # pragma: no cover - console entry for `python -m twin.cli`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
