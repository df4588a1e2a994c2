"""`twin deploy nginx`: a complete nginx configuration for a workspace behind nginx.

nginx serves ``/tiles/`` straight from ``WS/tiles`` (strong validators: ETag and
Last-Modified, 304s; the ``.json.gz`` twins a build writes go out with ``gzip_static``; CORS;
an hour's cache for content, a minute's revalidated cache for JSON) and passes everything else
— the API, ``/ws/live`` (WebSocket upgrade) and the page — to the `twin serve` upstreams, least
connections first. A workspace that holds only ``tiles.3tz`` has its tiles passed on too.

The file runs as is with ``nginx -p DIR -c nginx.conf``: the pid file, logs and temporary
folders are inside DIR, nothing under /etc or /var.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from server.files import CONTENT_TYPES
from twin.errors import InputError
from twin.workspace import WorkspacePaths

CONFIG_NAME = "nginx.conf"
PAGE_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
}
TEMP_FOLDERS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
CORS = (
    'add_header Access-Control-Allow-Origin "*" always;\n'
    'add_header Access-Control-Expose-Headers "ETag, Content-Encoding" always;'
)


@dataclass(frozen=True)
class NginxDeployment:
    """What the configuration serves: workspace `ws`, on `listen` ("PORT" or "HOST:PORT"),
    in front of `upstreams` ("HOST:PORT" each), written into `out`; `user` is the account
    nginx workers run as when nginx starts as root (it must be able to read WS/tiles)."""

    ws: Path
    listen: str
    upstreams: tuple[str, ...]
    out: Path
    user: str | None = None
    body_limit_mib: int = 64


def parse_upstreams(value: str) -> tuple[str, ...]:
    """``HOST:PORT[,HOST:PORT...]`` as a tuple; InputError naming the bad part."""
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if not parts:
        raise InputError("--upstream needs at least one HOST:PORT")
    for part in parts:
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"--upstream '{part}' is not HOST:PORT")
    return parts


def _types() -> str:
    by_type: dict[str, list[str]] = {}
    for suffix, media in {**CONTENT_TYPES, **PAGE_TYPES}.items():
        by_type.setdefault(media, []).append(suffix.lstrip("."))
    lines = [f"    {media} {' '.join(sorted(exts))};" for media, exts in sorted(by_type.items())]
    return "  types {\n" + "\n".join(lines) + "\n  }"


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _tiles_location(paths: WorkspacePaths) -> str:
    if not paths.tileset.is_file():  # an archive-only workspace: twin serve reads the .3tz
        return "    location /tiles/ {\n      proxy_pass http://twin;\n    }"
    tiles = paths.tiles.resolve()
    return f"""    location /tiles/ {{
      alias {tiles}/;
      etag on;
      gzip_static on;
      gzip_vary on;
{_indent(CORS, 6)}
      add_header Cache-Control "public, max-age=3600" always;
      location ~ \\.json$ {{
{_indent(CORS, 8)}
        add_header Cache-Control "public, max-age=60, must-revalidate" always;
      }}
    }}"""


def render(deployment: NginxDeployment) -> str:
    """The text of nginx.conf for `deployment`."""
    out = deployment.out.resolve()
    paths = WorkspacePaths(deployment.ws.resolve())
    servers = "\n".join(
        f"    server {u} max_fails=3 fail_timeout=10s;" for u in deployment.upstreams
    )
    temps = "\n".join(f"  {name}_temp_path {out}/temp/{name};" for name in TEMP_FOLDERS)
    user = f"user {deployment.user};\n" if deployment.user else ""
    return f"""# Written by `twin deploy nginx` for {paths.root}
# Run: nginx -p {out} -c {CONFIG_NAME}    (reload: add -s reload; stop: -s quit)
{user}worker_processes auto;
pid {out}/nginx.pid;
error_log {out}/logs/error.log warn;
events {{ worker_connections 4096; }}

http {{
  access_log {out}/logs/access.log;
{temps}
{_types()}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  server_tokens off;
  gzip on;
  gzip_types application/json model/gltf+json text/css text/javascript image/svg+xml;
  gzip_min_length 256;

  map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' close;
  }}

  upstream twin {{
    least_conn;
{servers}
    keepalive 64;
  }}

  server {{
    listen {deployment.listen};
    client_max_body_size {deployment.body_limit_mib}m;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;

{_tiles_location(paths)}

    location /ws/ {{
      proxy_pass http://twin;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_buffering off;
    }}

    location / {{
      proxy_pass http://twin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""


def write_config(deployment: NginxDeployment) -> Path:
    """Write DIR/nginx.conf and the folders it names (logs, temp); its path."""
    paths = WorkspacePaths(deployment.ws)
    if not (paths.tileset.is_file() or paths.tiles_archive.is_file()):
        raise InputError(f"{deployment.ws} is not a built workspace (no tiles)")
    out = deployment.out
    for folder in ("logs", *(f"temp/{name}" for name in TEMP_FOLDERS)):
        (out / folder).mkdir(parents=True, exist_ok=True)
    target = out / CONFIG_NAME
    target.write_text(render(deployment), encoding="utf-8")
    return target


def default_user() -> str | None:
    """The account to name in ``user``: the caller's when the caller is root (nginx started
    as root would otherwise run its workers as nobody, who may not read the workspace)."""
    return getpass.getuser() if os.geteuid() == 0 else None
