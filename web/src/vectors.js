// Vector layers from the catalog (GET /api/elements?kind=…, with geometry): roads and water as
// lines, jurisdictions outlined and labelled with their unit, sensors as markers with their
// name. Loaded after the first view of the model (they are not needed to see the district).
// Lines are drawn 0.5 m above each element's ground height and stay visible, dimmed, where the
// terrain or a building hides them. Positions lon/lat degrees, heights ellipsoidal metres.
import { api, query } from "./api.js";
import { entityIcon } from "./icons.js";

const Cesium = window.Cesium;
const PAGE = 1000;
const LIFT_M = 0.5;
const HIDDEN_ALPHA = 0.4; // of a line where the terrain or a building hides it
const STYLES = {
  road: { colour: "#9aa9bd", alpha: 0.55, width: 2 },
  water: { colour: "#4fa3ff", alpha: 0.7, width: 2 },
  jurisdiction: { colour: "#ffd54a", alpha: 0.95, width: 3 },
};
const UNIT_COLOURS = ["#ffd54a", "#ff7ad9", "#7cf0c8", "#ff9f43", "#9fd3ff"];

/** Every element of `kind` with its geometry (all pages). */
async function elementsOf(kind) {
  const items = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await api(`/api/elements${query({ kind, limit: PAGE, offset })}`);
    items.push(...(page.items || []));
    if (items.length >= page.total || !(page.items || []).length) return items;
  }
}

/** The lines of a GeoJSON geometry: arrays of [lon, lat] (polygon rings included). */
function lines(geometry) {
  if (!geometry) return [];
  const { type, coordinates } = geometry;
  if (type === "LineString") return [coordinates];
  if (type === "MultiLineString" || type === "Polygon") return coordinates;
  if (type === "MultiPolygon") return coordinates.flat();
  return [];
}

export class VectorLayers {
  /** @param {any} viewer */
  constructor(viewer) {
    this.viewer = viewer;
    this.primitives = {}; // layer → Primitive
    this.labels = new Cesium.CustomDataSource("vector-labels");
    this.sensors = new Cesium.CustomDataSource("sensors");
    viewer.dataSources.add(this.labels);
    viewer.dataSources.add(this.sensors);
    this.visible = { roads: true, water: true, jurisdictions: true, sensors: true };
    this.counts = {};
    this.scale = 1;
  }

  /** Load and draw every layer; resolves when all are drawn. */
  async load() {
    const [roads, water, jurisdictions, sensors] = await Promise.all(
      ["road", "water", "jurisdiction", "sensor"].map((kind) => elementsOf(kind)),
    );
    this.draw("roads", roads, () => STYLES.road);
    this.draw("water", water, () => STYLES.water);
    const units = [...new Set(jurisdictions.map((j) => j.unit))];
    this.draw("jurisdictions", jurisdictions, (el) => ({
      ...STYLES.jurisdiction,
      colour: UNIT_COLOURS[units.indexOf(el.unit) % UNIT_COLOURS.length],
    }));
    for (const el of jurisdictions) this.unitLabel(el);
    for (const el of sensors) this.sensorMarker(el);
    this.counts = { roads: roads.length, water: water.length, jurisdictions: jurisdictions.length, sensors: sensors.length };
    this.apply();
    return this.counts;
  }

  draw(layer, elements, style) {
    const instances = [];
    for (const el of elements) {
      const { colour, alpha, width } = style(el);
      const height = (el.base_height || 0) + LIFT_M;
      for (const line of lines(el.geometry)) {
        if (line.length < 2) continue;
        instances.push(
          new Cesium.GeometryInstance({
            geometry: new Cesium.PolylineGeometry({
              positions: Cesium.Cartesian3.fromDegreesArrayHeights(line.flatMap(([lon, lat]) => [lon, lat, height])),
              width,
              arcType: Cesium.ArcType.NONE,
            }),
            attributes: {
              color: Cesium.ColorGeometryInstanceAttribute.fromColor(Cesium.Color.fromCssColorString(colour).withAlpha(alpha)),
              depthFailColor: Cesium.ColorGeometryInstanceAttribute.fromColor(
                Cesium.Color.fromCssColorString(colour).withAlpha(alpha * HIDDEN_ALPHA),
              ),
            },
          }),
        );
      }
    }
    if (!instances.length) return;
    const appearance = () => new Cesium.PolylineColorAppearance({ translucent: true });
    const primitive = new Cesium.Primitive({
      geometryInstances: instances,
      appearance: appearance(),
      depthFailAppearance: appearance(),
      allowPicking: false,
      asynchronous: true,
    });
    this.primitives[layer] = this.viewer.scene.primitives.add(primitive);
  }

  /** The unit's name at the jurisdiction's representative point. */
  unitLabel(el) {
    this.labels.entities.add({
      id: `unit-label:${el.id}`,
      position: Cesium.Cartesian3.fromDegrees(el.lon, el.lat, (el.base_height || 0) + 30),
      label: {
        text: el.unit || el.name || el.id,
        font: this.font(18),
        fillColor: Cesium.Color.fromCssColorString("#ffe7a0"),
        outlineColor: Cesium.Color.BLACK,
        outlineWidth: 4,
        style: Cesium.LabelStyle.FILL_AND_OUTLINE,
        disableDepthTestDistance: Number.POSITIVE_INFINITY,
        distanceDisplayCondition: new Cesium.DistanceDisplayCondition(300, 30000),
      },
    });
  }

  sensorMarker(el) {
    this.sensors.entities.add({
      id: `sensor-marker:${el.id}`,
      position: Cesium.Cartesian3.fromDegrees(el.lon, el.lat, (el.base_height || 0) + 2),
      properties: { elementId: el.id },
      billboard: { image: entityIcon("environment", { scale: this.scale, still: true }), disableDepthTestDistance: Number.POSITIVE_INFINITY },
      label: {
        text: el.name || el.id,
        font: this.font(12),
        fillColor: Cesium.Color.fromCssColorString("#c8f7d5"),
        outlineColor: Cesium.Color.BLACK,
        outlineWidth: 3,
        style: Cesium.LabelStyle.FILL_AND_OUTLINE,
        pixelOffset: new Cesium.Cartesian2(0, 20),
        verticalOrigin: Cesium.VerticalOrigin.TOP,
        disableDepthTestDistance: Number.POSITIVE_INFINITY,
        distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, 2500),
      },
    });
  }

  font(px) {
    return `600 ${Math.round(px * this.scale)}px 'Noto Sans CJK SC', 'Noto Sans', sans-serif`;
  }

  /** Label and icon size factor (the page's text scale). */
  setScale(scale) {
    this.scale = scale;
    for (const entity of this.labels.entities.values) entity.label.font = this.font(18);
    for (const entity of this.sensors.entities.values) {
      entity.label.font = this.font(12);
      entity.billboard.image = entityIcon("environment", { scale, still: true });
    }
  }

  /** Show or hide a layer: "roads", "water", "jurisdictions", "sensors". */
  setLayer(layer, on) {
    this.visible[layer] = on;
    this.apply();
  }

  apply() {
    for (const [layer, primitive] of Object.entries(this.primitives)) primitive.show = this.visible[layer];
    this.labels.show = this.visible.jurisdictions;
    this.sensors.show = this.visible.sensors;
    this.viewer.scene.requestRender();
  }
}
