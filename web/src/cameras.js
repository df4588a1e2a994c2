// Cameras on the map: every camera and live drone of GET /api/cameras as a marker at its
// optical centre, its view frustum and its ground footprint; kept current by `camera` and
// `drone` messages. A click on a marker or frustum opens the camera's AR view.
import { api } from "./api.js";
import { ArView } from "./ar.js";
import { frustumCorners, frustumDepth } from "./cameramodel.js";
import { FrameFeeds } from "./frames.js";
import { markerGraphics } from "./markers.js";
import { VideoProjection } from "./projection.js";

const Cesium = window.Cesium;

const KIND_COLOURS = {
  fixed: "#38d6ff",
  ptz: "#7cf0c8",
  "eagle-eye": "#ffd54a",
  drone: "#ff7ad9",
};

/** Footprints are drawn this far (m) above the camera's ground, clear of the terrain mesh. */
const FOOTPRINT_LIFT_M = 0.6;

function colourOf(record) {
  return Cesium.Color.fromCssColorString(KIND_COLOURS[record.camera_kind] || "#38d6ff");
}

/** Rings of a GeoJSON Polygon or MultiPolygon footprint: arrays of [lon, lat]. */
function outerRings(footprint) {
  if (!footprint) return [];
  if (footprint.type === "Polygon") return [footprint.coordinates[0]];
  if (footprint.type === "MultiPolygon") return footprint.coordinates.map((polygon) => polygon[0]);
  return [];
}

/** Markers, frustums and footprints of the cameras, keyed by camera id. */
export class CameraLayer {
  constructor(viewer) {
    this.viewer = viewer;
    this.source = new Cesium.CustomDataSource("cameras");
    viewer.dataSources.add(this.source);
    this.footprints = viewer.scene.primitives.add(new Cesium.PrimitiveCollection());
    this.records = new Map();
    this.footprintPrimitives = new Map();
  }

  /** Load every camera (GET /api/cameras). */
  async load() {
    const body = await api("/api/cameras");
    for (const record of body.items || []) this.upsert(record);
    return this.records.size;
  }

  get(cameraId) {
    return this.records.get(cameraId);
  }

  /** The camera id a picked entity belongs to, or undefined. */
  cameraOf(entity) {
    if (!entity || !entity.properties || !entity.properties.cameraId) return undefined;
    return entity.properties.cameraId.getValue();
  }

  /** Show or hide the markers and frustums (the "cameras" layer switch). */
  setVisible(on) {
    this.source.show = on;
    this.viewer.scene.requestRender();
  }

  /** Show or hide the ground footprints (the "footprints" layer switch). */
  setFootprints(on) {
    this.footprints.show = on;
    this.viewer.scene.requestRender();
  }

  /** The frustum's ECEF corners drawn now for `cameraId` (tests read them). */
  frustum(cameraId) {
    const record = this.records.get(cameraId);
    return record ? frustumCorners(record, frustumDepth(record)) : undefined;
  }

  /** Add or move one camera from its description (GET /api/cameras/{id}, `camera`/`drone`). */
  upsert(record) {
    if (!record || !record.id) return;
    this.records.set(record.id, record);
    const colour = colourOf(record);
    const entities = this.source.entities;
    const { apex, corners } = frustumCorners(record, frustumDepth(record));
    const properties = new Cesium.PropertyBag({ cameraId: record.id });
    const markerId = `camera-marker:${record.id}`;
    let marker = entities.getById(markerId);
    if (!marker) {
      marker = entities.add({
        id: markerId,
        properties,
        ...markerGraphics({ pixelSize: 13, outline: "#05080f", labelOffset: 14, maxDistance: 4000 }),
      });
    }
    marker.position = apex;
    marker.point.color = colour;
    marker.label.text = record.name || record.id;

    // The frustum's 8 edges as two polylines: the far rectangle with two side edges, and the
    // other two side edges.
    const [c0, c1, c2, c3] = corners;
    const paths = [
      [c0, c1, c2, c3, c0, apex, c2],
      [c1, apex, c3],
    ];
    paths.forEach((positions, index) => {
      const id = `camera-frustum:${record.id}:${index}`;
      let edge = entities.getById(id);
      if (!edge) {
        edge = entities.add({
          id,
          properties,
          polyline: { width: 2, arcType: Cesium.ArcType.NONE },
        });
      }
      edge.polyline.positions = positions;
      edge.polyline.material = colour.withAlpha(0.9);
    });
    this.drawFootprint(record, colour);
    this.viewer.scene.requestRender();
  }

  /**
   * The footprint as a flat polygon just above the camera's ground (the server's footprint is
   * on flat ground at that height), not pickable so clicks reach the model. (Draping it with a
   * classification primitive instead stops Cesium from picking the building tiles.)
   */
  drawFootprint(record, colour) {
    const old = this.footprintPrimitives.get(record.id);
    if (old) old.forEach((primitive) => this.footprints.remove(primitive));
    const rings = outerRings(record.footprint).filter((ring) => ring.length >= 4);
    if (!rings.length) {
      this.footprintPrimitives.delete(record.id);
      return;
    }
    const height = (record.ground_height ?? 0) + FOOTPRINT_LIFT_M;
    const positions = (ring) => Cesium.Cartesian3.fromDegreesArrayHeights(ring.flatMap(([lon, lat]) => [lon, lat, height]));
    const fill = new Cesium.Primitive({
      geometryInstances: rings.map(
        (ring) =>
          new Cesium.GeometryInstance({
            geometry: new Cesium.PolygonGeometry({
              polygonHierarchy: new Cesium.PolygonHierarchy(positions(ring)),
              height,
            }),
            attributes: {
              color: Cesium.ColorGeometryInstanceAttribute.fromColor(colour.withAlpha(0.16)),
            },
          }),
      ),
      appearance: new Cesium.PerInstanceColorAppearance({ translucent: true, closed: false }),
      allowPicking: false,
    });
    const outline = new Cesium.Primitive({
      geometryInstances: rings.map(
        (ring) =>
          new Cesium.GeometryInstance({
            geometry: new Cesium.PolylineGeometry({
              positions: positions(ring),
              width: 2,
              arcType: Cesium.ArcType.NONE,
            }),
            attributes: {
              color: Cesium.ColorGeometryInstanceAttribute.fromColor(colour.withAlpha(0.85)),
            },
          }),
      ),
      appearance: new Cesium.PolylineColorAppearance(),
      allowPicking: false,
    });
    this.footprints.add(fill);
    this.footprints.add(outline);
    this.footprintPrimitives.set(record.id, [fill, outline]);
  }
}

/**
 * Cameras on the page: the map layer, the AR view, the frame feeds and the video projection,
 * kept current by live messages. Drones that send frames are projected as long as they fly.
 * @param {{viewer: Cesium.Viewer, container: HTMLElement, live: any,
 *   selectElement: (id: string) => void, showEntity: (payload: any) => void,
 *   moved: (record: any) => void}} parts `moved` runs after each live pose
 * @returns {{layer: CameraLayer, ar: ArView, projection: VideoProjection, feeds: FrameFeeds,
 *   onMessage: (message: any) => boolean, cameraOf: (entity: any) => string | undefined,
 *   load: () => Promise<void>}}
 */
export function setupCameras({ viewer, container, live, selectElement, showEntity, moved }) {
  const layer = new CameraLayer(viewer);
  const feeds = new FrameFeeds();
  const projection = new VideoProjection(viewer);
  const ar = new ArView({ container, feeds, projection, live, onSelect: selectElement, onEntity: showEntity });
  const droneFeeds = new Map();
  let entityTimer = 0;

  const followDrone = (record) => {
    if (droneFeeds.has(record.id)) return;
    droneFeeds.set(
      record.id,
      feeds.get(record.id).subscribe((feed) => {
        const current = layer.get(record.id);
        if (!current) return;
        if (projection.has(record.id)) projection.refresh(record.id);
        else projection.show(current, feed.canvas);
      }),
    );
  };

  const onPose = (record) => {
    layer.upsert(record);
    projection.move(record);
    ar.move(record);
    moved(record);
    if (record.camera_kind === "drone") followDrone(record);
  };

  return {
    layer,
    ar,
    projection,
    feeds,
    cameraOf: (entity) => layer.cameraOf(entity),
    /** Load (again, after a reconnect) every camera, following the drones' frames. */
    load: () =>
      layer.load().then(() => layer.records.forEach((record) => record.camera_kind === "drone" && followDrone(record))),
    /** Handle a live message; true when it was about cameras. */
    onMessage(message) {
      if (message.topic === "camera" || message.topic === "drone") {
        onPose(message.payload);
        return true;
      }
      if (message.topic === "entity" && ar.isOpen && !entityTimer) {
        // After main.js has moved the entity; at most every 200 ms.
        entityTimer = setTimeout(() => {
          entityTimer = 0;
          ar.renderEntities();
        }, 200);
      }
      return false;
    },
  };
}
