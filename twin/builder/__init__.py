"""`twin build`: source folder → workspace.

`sources` reads and reprojects layers, `ids` makes stable element ids, `terrain` reads the DTM
and triangulates it, `buildings` extrudes footprints, `elements` makes catalog elements and
assigns jurisdictions and sites, `meshes` writes the npz meshes, `pipeline` runs it all
atomically (`build_workspace`).
Drone products: `rasters` opens DSM/DTM/ortho GeoTIFFs in any CRS and unit, `ndsm` gives
building heights from DSM − DTM, `drone` wires them in, `ortho` textures the terrain,
`synthetic` makes the sample district's synthetic products.
"""
