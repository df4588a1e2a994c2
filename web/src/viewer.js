// The Cesium globe: a viewer without Ion (no Ion logo, the OpenStreetMap credit the data's
// licence asks for), a dark offline globe, the district's 3D Tiles styled by height with the
// selected feature highlighted and buildings / terrain switchable, picking and camera moves.
// Heights are WGS84 ellipsoidal metres.
import { t } from "./i18n.js";

const Cesium = window.Cesium;

const HIGHLIGHT = "color('#ffd54a')";
// Building colour ramp by `height` (metres above ground), low to high: slate → cyan → white.
// Content without a `height` property (the textured terrain) keeps its own colours.
const HEIGHT_RAMP = [
  ["${height} === undefined", "color('white')"],
  ["${height} >= 200", "color('#e8f4ff')"],
  ["${height} >= 100", "color('#9fd3ff')"],
  ["${height} >= 50", "color('#5aa7e0')"],
  ["${height} >= 25", "color('#3f7fb5')"],
  ["${height} >= 10", "color('#34628a')"],
  ["true", "color('#2d4a66')"],
];

/**
 * Create the viewer in `container`: no Ion, render errors left to `renderguard.js`, and only
 * what the district needs drawn: no sky, sun, moon or globe (the district's own terrain is in
 * its tileset; the globe had nothing but a dark colour on it), no MSAA and no
 * order-independent translucency (each multiplies the work of every frame; on a software
 * renderer they were most of the first view's load time).
 */
export function createViewer(container) {
  Cesium.Ion.defaultAccessToken = "";
  // The Cesium ion logo credits a service this page never uses.
  Cesium.CreditDisplay.cesiumCredit = undefined;
  const viewer = new Cesium.Viewer(container, {
    baseLayer: false,
    geocoder: false,
    baseLayerPicker: false,
    timeline: false,
    animation: false,
    sceneModePicker: false,
    navigationHelpButton: false,
    fullscreenButton: false,
    homeButton: true,
    infoBox: false,
    selectionIndicator: true,
    skyBox: false,
    skyAtmosphere: false,
    showRenderLoopErrors: false,
    msaaSamples: 1,
    orderIndependentTranslucency: false,
    // Draw only when something changed (camera, tiles, entities): a wall display runs all day.
    requestRenderMode: true,
    maximumRenderTimeChange: Number.POSITIVE_INFINITY,
  });
  const scene = viewer.scene;
  scene.sun = undefined;
  scene.moon = undefined;
  scene.backgroundColor = Cesium.Color.fromCssColorString("#05080f");
  scene.globe.show = false;
  scene.fog.enabled = false;
  viewer.cesiumWidget.creditContainer.classList.add("credits");
  return viewer;
}

/**
 * The OpenStreetMap attribution (ODbL) in the current language, shown on screen: call again
 * after a language switch.
 * @returns {(viewer: any) => void} the function that (re)places it
 */
export function osmCredit() {
  let credit = null;
  return (viewer) => {
    if (credit) viewer.creditDisplay.removeStaticCredit(credit);
    credit = new Cesium.Credit(
      `<a href="https://www.openstreetmap.org/copyright" target="_blank" rel="noopener">${t("credits.osm")}</a>`,
      true,
    );
    viewer.creditDisplay.addStaticCredit(credit);
    viewer.scene.requestRender();
  };
}

/**
 * Cesium3DTileStyle: colour by height, the selected element highlighted, buildings and terrain
 * shown or not.
 * @param {string|null} selectedId
 * @param {{buildings?: boolean, terrain?: boolean}} show
 */
export function buildingStyle(selectedId, { buildings = true, terrain = true } = {}) {
  const conditions = [...HEIGHT_RAMP];
  if (selectedId) {
    const literal = JSON.stringify(String(selectedId)).replace(/^"|"$/g, "").replace(/'/g, "\\'");
    conditions.unshift([`\${element_id} === '${literal}'`, HIGHLIGHT]);
  }
  return new Cesium.Cesium3DTileStyle({
    color: { conditions },
    show: { conditions: [["${height} === undefined", String(terrain)], ["true", String(buildings)]] },
  });
}

/** Load the district's tileset, add it to the scene and style it. */
export async function loadTileset(viewer, url) {
  const tileset = await Cesium.Cesium3DTileset.fromUrl(url, {
    maximumScreenSpaceError: 16,
    // Ask for tiles at once when the view jumps (the first view, a flight's end) instead of
    // waiting for the camera to be still for a few frames.
    cullRequestsWhileMoving: false,
    // Flat-coloured buildings and an orthophoto need no image-based lighting (its environment
    // maps are computed per tile on the GPU).
    environmentMapOptions: { enabled: false },
    imageBasedLighting: new Cesium.ImageBasedLighting({ imageBasedLightingFactor: new Cesium.Cartesian2(0, 0) }),
  });
  tileset.style = buildingStyle(null);
  viewer.scene.primitives.add(tileset);
  return tileset;
}

/**
 * Render until the scene has drawn `frames` frames in a row with every needed tile loaded;
 * resolves true then, or false after `timeoutMs`.
 */
export function settle(viewer, tileset, { frames = 3, timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    let quiet = 0;
    const started = performance.now();
    const remove = viewer.scene.postRender.addEventListener(() => {
      quiet = tileset && !tileset.tilesLoaded ? 0 : quiet + 1;
      const timedOut = performance.now() - started > timeoutMs;
      if (quiet >= frames || timedOut) {
        remove();
        resolve(!timedOut);
      } else {
        viewer.scene.requestRender();
      }
    });
    viewer.scene.requestRender();
  });
}

/**
 * What is under a window position (CSS pixels from the canvas top-left).
 * @returns {{feature?: any, elementId?: string, entity?: any, lon?: number, lat?: number}}
 */
export function pickAt(viewer, position) {
  const scene = viewer.scene;
  const picked = scene.pick(position);
  if (picked instanceof Cesium.Cesium3DTileFeature) {
    const elementId = picked.getProperty("element_id");
    if (elementId) return { feature: picked, elementId: String(elementId) };
  }
  if (picked && picked.id instanceof Cesium.Entity) return { entity: picked.id };
  // The ground is the terrain tileset: where the depth buffer says the click landed.
  const cartesian =
    (picked && scene.pickPositionSupported && scene.pickPosition(position)) ||
    viewer.camera.pickEllipsoid(position, scene.globe.ellipsoid);
  if (!cartesian) return {};
  const carto = Cesium.Cartographic.fromCartesian(cartesian);
  return {
    lon: Cesium.Math.toDegrees(carto.longitude),
    lat: Cesium.Math.toDegrees(carto.latitude),
  };
}

/**
 * Fly to look at a point from `range` metres away, 40° down, from the south.
 * @param {number} lon degrees
 * @param {number} lat degrees
 * @param {number} height ellipsoidal metres of the point looked at
 * @returns {Promise<void>} resolved when the flight ends (or is cancelled)
 */
export function flyToPoint(viewer, lon, lat, height = 0, range = 450, duration = 1.5) {
  const target = Cesium.Cartesian3.fromDegrees(lon, lat, height);
  const sphere = new Cesium.BoundingSphere(target, 1);
  return new Promise((resolve) => {
    viewer.camera.flyToBoundingSphere(sphere, {
      offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-40), range),
      duration,
      complete: resolve,
      cancel: resolve,
    });
  });
}
