"""`twin serve` on a workspace whose tiles are only a ``.3tz`` archive: entries found through
the archive's index, the same bytes, types, ETags, 304s and CORS as the folder, deflated entries
sent as gzip, path escapes refused, the folder preferred when both exist, a replaced archive
picked up, and stored or streamed (data-descriptor) entries read too."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from build_helpers import small_source
from paths import TWIN
from servers import LiveServer, raw_get, start_server

from tiles.archive import INDEX_NAME, index_bytes, write_3tz
from twin.errors import WorkspaceError
from twin.workspace import WorkspacePaths, open_workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small workspace built with --archive (LOD, meshopt): (workspace, its tiles folder)."""
    root = tmp_path_factory.mktemp("archive")
    src = small_source(root / "src", limit=40)
    ws = root / "ws"
    result = subprocess.run([TWIN, "build", str(src), "-o", str(ws), "--archive"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return ws, WorkspacePaths(ws).tiles


@pytest.fixture(scope="module")
def servers(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """(server of the archive-only copy, server of the folder-only copy) of `built`."""
    ws, _ = built
    root = tmp_path_factory.mktemp("servers")
    archive_ws, folder_ws = root / "archive", root / "folder"
    shutil.copytree(ws, archive_ws)
    shutil.rmtree(WorkspacePaths(archive_ws).tiles)
    shutil.copytree(ws, folder_ws)
    WorkspacePaths(folder_ws).tiles_archive.unlink()
    archive, folder = start_server(archive_ws), start_server(folder_ws)
    yield archive, folder
    archive.stop()
    folder.stop()


def _files(tiles: Path) -> list[str]:
    """The tileset's files (not the pre-compressed JSON twins a build adds for nginx)."""
    return sorted(
        p.relative_to(tiles).as_posix()
        for p in tiles.rglob("*")
        if p.is_file() and not p.name.endswith(".json.gz")
    )


def test_every_file_is_served_from_the_archive_as_from_the_folder(
    built: tuple[Path, Path], servers: tuple[LiveServer, LiveServer]
) -> None:
    _, tiles = built
    archive, folder = servers
    names = _files(tiles)
    assert any(n.endswith(".glb") for n in names) and "tileset.json" in names
    with archive.client() as a, folder.client() as f:
        for name in names:
            for encoding in ("identity", "gzip"):
                headers = {"Accept-Encoding": encoding}
                got, want = a.get(f"/tiles/{name}", headers=headers), f.get(f"/tiles/{name}")
                assert got.status_code == 200, name
                assert got.content == (tiles / name).read_bytes(), name  # httpx un-gzips
                assert got.headers["content-type"] == want.headers["content-type"]
                assert got.headers["cache-control"] == want.headers["cache-control"]
            plain = {"Accept-Encoding": "identity"}
            etags = [s.get(f"/tiles/{name}", headers=plain).headers["etag"] for s in (a, f)]
            assert etags[0] == etags[1], name  # the same tag whichever way tiles are stored


def test_deflated_entries_go_out_as_gzip_only_when_accepted(
    built: tuple[Path, Path], servers: tuple[LiveServer, LiveServer]
) -> None:
    _, tiles = built
    archive, _ = servers
    glb = next(n for n in _files(tiles) if n.endswith(".glb"))
    original = (tiles / glb).read_bytes()
    with (
        archive.client() as c,
        c.stream("GET", f"/tiles/{glb}", headers={"Accept-Encoding": "gzip"}) as r,
    ):
        wire = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in r.headers["vary"].lower()
        gz_etag = r.headers["etag"]
    assert gzip.decompress(wire) == original  # the deflate stream, CRC and size check out
    assert len(wire) < len(original)
    with archive.client() as c:
        plain = c.get(f"/tiles/{glb}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == original
        assert plain.headers["etag"] != gz_etag  # one strong tag per representation
        refused = c.get(f"/tiles/{glb}", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_etag_304_and_cors(servers: tuple[LiveServer, LiveServer]) -> None:
    archive, _ = servers
    with archive.client() as c:
        for encoding in ("identity", "gzip"):
            first = c.get("/tiles/tileset.json", headers={"Accept-Encoding": encoding})
            etag = first.headers["etag"]
            assert etag.startswith('"') and not etag.startswith("W/")
            again = c.get("/tiles/tileset.json",
                          headers={"If-None-Match": etag, "Accept-Encoding": encoding})  # fmt: skip
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
        cors = c.get("/tiles/tileset.json", headers={"Origin": "https://wall.example"})
        assert cors.headers["access-control-allow-origin"] in ("*", "https://wall.example")


@pytest.mark.parametrize(
    "target",
    [
        "/tiles/../twin.json",
        "/tiles/%2e%2e/twin.json",
        "/tiles/..%2fcatalog.sqlite",
        "/tiles/buildings/../../twin.json",
        "/tiles//etc/passwd",
        "/tiles/./tileset.json",
        f"/tiles/{INDEX_NAME}",
        "/tiles/buildings",
        "/tiles/missing.glb",
    ],
)
def test_escapes_the_index_and_missing_entries_are_refused(
    servers: tuple[LiveServer, LiveServer], target: str
) -> None:
    archive, _ = servers
    status, body = raw_get(archive.url, target)
    assert status in (400, 404)
    manifest = WorkspacePaths(archive.ws).manifest.read_bytes()
    assert manifest[:64] not in body


def test_folder_is_preferred_and_a_replaced_archive_is_picked_up(
    built: tuple[Path, Path], server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    ws, tiles = built
    both = server_factory(ws)  # a copy holding tiles/ and tiles.3tz
    marker = b'{"asset": {"version": "1.1"}, "note": "the folder"}'
    (WorkspacePaths(both.ws).tileset).write_bytes(marker)
    with both.client() as c:
        assert c.get("/tiles/tileset.json").content == marker

    only = tmp_path / "only"
    shutil.copytree(ws, only)
    shutil.rmtree(WorkspacePaths(only).tiles)
    srv = server_factory(only, copy=False)
    with srv.client() as c:
        before = c.get("/tiles/tileset.json")
        assert before.content == (tiles / "tileset.json").read_bytes()
        changed = tmp_path / "changed"
        shutil.copytree(tiles, changed)
        (changed / "tileset.json").write_bytes(marker)
        write_3tz(changed, WorkspacePaths(only).tiles_archive)  # atomic replace, as a rebuild
        after = c.get("/tiles/tileset.json", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.content == marker


class _Unseekable(io.RawIOBase):
    """A write-only stream without seek, so zipfile writes data descriptors."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def test_stored_and_streamed_entries_are_read(
    built: tuple[Path, Path], server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Another writer's archive: JSON stored, glb deflated, sizes in data descriptors."""
    ws, tiles = built
    out = tmp_path / "ws"
    shutil.copytree(ws, out)
    shutil.rmtree(WorkspacePaths(out).tiles)
    offsets = {}
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w") as archive:
        for name in _files(tiles):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = (
                zipfile.ZIP_STORED if name.endswith(".json") else zipfile.ZIP_DEFLATED
            )
            with archive.open(info, "w") as entry:
                entry.write((tiles / name).read_bytes())
            offsets[name] = info.header_offset
        archive.writestr(INDEX_NAME, index_bytes(offsets))
    path = WorkspacePaths(out).tiles_archive
    path.write_bytes(bytes(stream.data))
    with zipfile.ZipFile(path) as check:
        flags = {i.filename: i.flag_bits for i in check.infolist()}
    assert all(flags[name] & 0x08 for name in offsets)  # sizes follow the data
    srv = server_factory(out, copy=False)
    with srv.client() as c:
        for name in _files(tiles):
            for encoding in ("identity", "gzip"):
                r = c.get(f"/tiles/{name}", headers={"Accept-Encoding": encoding})
                assert r.status_code == 200 and r.content == (tiles / name).read_bytes(), name


def test_open_workspace_needs_tiles_as_folder_or_archive(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    ws, _ = built
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    paths = WorkspacePaths(copy)
    shutil.rmtree(paths.tiles)
    assert open_workspace(copy)[0].tiles_archive.is_file()
    paths.tiles_archive.unlink()
    with pytest.raises(WorkspaceError, match=r"tiles\.3tz"):
        open_workspace(copy)
