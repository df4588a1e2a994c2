"""The desktop viewer (`twin view`, docs/viewer.md).

Entry: `twin.viewer.app.view`. Parts: `district` (a workspace opened for viewing: catalog,
tileset trees, ground, cameras), `tileset` / `tilesource` / `content` (reading 3D Tiles),
`lod` / `tilelayer` (level of detail), `scene` (what is drawn, picking, camera moves),
`vectors` / `cameras` / `overlays` / `actors` / `labels` / `colours` / `fonts` (drawing parts),
`records` / `client` / `live` (the workspace's or the server's records and live layer),
`measure`, `panel` (record text), `offscreen` (screenshots) and `window` (the Qt window,
imported only when a window opens).
"""
