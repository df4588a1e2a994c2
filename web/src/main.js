// The war-room page: wires the globe, the side panel, search, the live layer, the alert feed and
// its map symbols, the boards, layers, cameras, replay, languages and wall mode. Exposes
// `window.twin` for operators' consoles, wall scripting and the browser tests (docs/wall.md).
import { Access } from "./access.js";
import { alertEntity } from "./alertdata.js";
import { AlertSymbols } from "./alertmap.js";
import { AlertList } from "./alerts.js";
import { alertContent } from "./alertview.js";
import { api, ApiError, query } from "./api.js";
import { adoptUrlToken, getToken } from "./auth.js";
import { BoardsPanel } from "./boards.js";
import { cameraSections } from "./cameraview.js";
import { setupCameras } from "./cameras.js";
import { poseText } from "./ar.js";
import { Clock } from "./clock.js";
import { Declutter } from "./declutter.js";
import { AlertHistory } from "./history.js";
import { applyStatic, lang, onLang, setLang, t } from "./i18n.js";
import { LayerSwitcher } from "./layers.js";
import { LiveLayer, LiveSocket } from "./live.js";
import { setMarkerScale } from "./markers.js";
import { Panel } from "./panel.js";
import { RenderGuard } from "./renderguard.js";
import { Replay } from "./replay.js";
import { setupSearch } from "./search.js";
import { AlertSound } from "./sound.js";
import { TimeBar } from "./timebar.js";
import { VectorLayers } from "./vectors.js";
import { buildingStyle, createViewer, flyToPoint, loadTileset, osmCredit, pickAt, settle } from "./viewer.js";
import { WallMode } from "./wall.js";

const Cesium = window.Cesium;
const $ = (id) => document.getElementById(id);
const params = new URL(window.location.href).searchParams;

/** What the page is doing now (read by `twin.state()`). */
const page = {
  selectedId: null,
  selectedAlert: null,
  connection: "connecting",
  connects: 0,
  snapshot: false,
  everOpen: false,
  messages: 0,
  frames: 0,
  tilesetError: null,
  tileStatus: "tiles.loading",
  layers: { buildings: true, terrain: true },
};

adoptUrlToken();
applyStatic();
performance.mark("twin:start");
const viewer = createViewer($("map"));
const placeCredit = osmCredit();
placeCredit(viewer);
viewer.scene.postRender.addEventListener(() => (page.frames += 1));
const twin = { viewer, tileset: null, page };
window.twin = twin;
// The model first: its requests go out before the rest of the page is built.
twin.ready = loadModel();

/** The text scale of the page (root font size over the 15 px design size). */
function textScale() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) / 15;
}
setMarkerScale(textScale());

// -- status bar: connection, model, render errors ----------------------------------------------

function showConnection() {
  $("conn").dataset.state = page.connection;
  $("conn-text").textContent = t(`conn.${page.connection}`);
  // After the socket was open once, any other state is a cut: say so where the wall shows it.
  const cut = page.everOpen && page.connection !== "open";
  $("reconnecting").hidden = !cut;
  $("reconnecting-text").textContent = t(page.connection === "unauthorized" ? "conn.signIn" : "conn.reconnecting");
}

function showTiles() {
  const status = $("tiles-status");
  status.textContent = t(page.tileStatus, { detail: page.tilesetError || "" });
  status.classList.toggle("error", Boolean(page.tilesetError));
}

const guard = new RenderGuard(viewer, {
  onError: (count, error) => {
    const box = $("render-status");
    box.hidden = false;
    box.textContent = t("render.error", { n: count, detail: error && error.message ? error.message : String(error) });
  },
  onRecover: () => ($("render-status").dataset.recovered = String(Date.now())),
  onRepeat: () => cameras.projection.hideAll(),
});

// -- panel, selection -------------------------------------------------------------------------

const panel = new Panel($("panel"), {
  onSelect: (id) => (id.startsWith("camera:") ? openCamera(id, { focusId: page.selectedId }) : selectElement(id, { fly: true })).catch(() => {}),
  onFly: (lon, lat, height) => flyToPoint(viewer, lon, lat, height),
  onClose: () => highlight(null),
  onAlert: (id) => select(id).catch(() => {}),
});

function restyle() {
  if (twin.tileset) twin.tileset.style = buildingStyle(page.selectedId, page.layers);
  viewer.scene.requestRender();
}

function highlight(id) {
  page.selectedId = id;
  page.selectedAlert = null;
  alerts.select(null);
  symbols.select(null);
  restyle();
}

/** The camera sections of a camera element's panel (live pose, AR, PTZ controls). */
function cameraExtra(record) {
  if (record.kind !== "camera") return () => [];
  return () =>
    cameraSections(cameras.layer.get(record.id), {
      mayMove: access.can("alerts"),
      onAr: () => openCamera(record.id).catch(() => {}),
      onError: (message) => alerts.showError(message),
    });
}

/**
 * Show an element's record in the panel and highlight it.
 * @param {string} id element id, e.g. "building:-6651434"
 * @param {{fly?: boolean}} options fly to it as well
 */
async function selectElement(id, { fly = false } = {}) {
  highlight(id);
  viewer.selectedEntity = undefined;
  panel.loading(id);
  try {
    const record = await api(`/api/elements/${encodeURIComponent(id)}`);
    if (page.selectedId !== id) return record;
    panel.showElement(record, cameraExtra(record));
    if (fly) flyToPoint(viewer, record.lon, record.lat, (record.base_height ?? 0) + (record.height ?? 0));
    return record;
  } catch (err) {
    if (page.selectedId === id) panel.error(err instanceof ApiError && err.status === 404 ? t("panel.notFound", { id }) : err.message);
    throw err;
  }
}

/** The element a click on open ground means (GET /api/pick answers its record, or 404). */
async function pickGround(lon, lat) {
  highlight(null);
  const key = `pick:${lon},${lat}`;
  page.selectedId = key;
  try {
    const record = await api(`/api/pick${query({ lon: lon.toFixed(7), lat: lat.toFixed(7) })}`);
    if (page.selectedId !== key) return;
    highlight(record.id);
    panel.showElement(record, cameraExtra(record));
  } catch (err) {
    if (page.selectedId !== key) return;
    if (err instanceof ApiError && err.status === 404) panel.showNothing(lon, lat);
    else panel.error(err.message);
  }
}

function showEntity(payload) {
  highlight(null);
  live.selectedId = payload.id;
  panel.showEntity(payload);
}

/**
 * Open an alert: fly to its place and show its panel (evidence, cameras, life cycle, element).
 * @param {any} alert the alert record (open, from the feed, or closed, from the history)
 */
function openAlert(alert, { fly = true } = {}) {
  highlight(alert.element_id || null);
  page.selectedAlert = alert.id;
  alerts.select(alert.id);
  symbols.select(alert.id);
  viewer.selectedEntity = undefined;
  const build = () => {
    const current = alerts.get(alert.id) || alert;
    return alertContent(current, {
      boards: (boards.data && boards.data.boards) || [],
      mayAct: access.can("alerts") && Boolean(alerts.get(alert.id)),
      onAct: (action, button) => alerts.act(current, action, button.parentElement),
      onCamera: (id) => openCamera(id, { focusId: current.element_id }).catch(() => {}),
      onSelect: (id) => selectElement(id, { fly: true }).catch(() => {}),
      onEntity: (id) => {
        const entity = live.payloadOf(id);
        showEntity(entity || alertEntity(current));
      },
      onFly: () => flyToPoint(viewer, current.lon, current.lat, current.height || 0, 350),
      entityOnMap: Boolean(current.entity_id && live.payloadOf(current.entity_id)),
    });
  };
  panel.showCustom({ alertId: alert.id }, build);
  if (fly) flyToPoint(viewer, alert.lon, alert.lat, alert.height || 0, 350);
  return alert;
}

/**
 * Open what `id` names: an open alert (fly + alert panel), a camera (record + AR view), else an
 * element (fly + record).
 * @param {string} id an alert id or an element id
 */
async function select(id) {
  const alert = alerts.get(id);
  if (alert) return openAlert(alert);
  if (!id.includes(":")) {
    // Not an element id (kind:source): a closed alert, e.g. from an element's recent events.
    page.selectedId = id;
    panel.loading(id);
    try {
      return openAlert(await api(`/api/alerts/${encodeURIComponent(id)}`));
    } catch (err) {
      if (page.selectedId === id) panel.error(err instanceof ApiError && err.status === 404 ? t("panel.notFound", { id }) : err.message);
      throw err;
    }
  }
  if (id.startsWith("camera:")) {
    await openCamera(id);
    return id;
  }
  return selectElement(id, { fly: true });
}

/**
 * Open a camera: its record in the panel and its AR view (the frame with labels; projected onto
 * the model unless `project` is false).
 */
async function openCamera(id, { project, focusId = null } = {}) {
  const opened = cameras.ar.open(id, { project, focusId });
  if (id.startsWith("camera:")) await selectElement(id).catch(() => {});
  await opened;
  return cameras.ar.record;
}

function onClick(position) {
  const hit = pickAt(viewer, position);
  const properties = hit.entity && hit.entity.properties;
  if (hit.elementId) {
    selectElement(hit.elementId).catch(() => {});
  } else if (hit.entity && cameras.cameraOf(hit.entity)) {
    openCamera(cameras.cameraOf(hit.entity)).catch(() => {});
  } else if (properties && properties.elementId) {
    selectElement(properties.elementId.getValue()).catch(() => {});
  } else if (hit.entity && live.payloadOf(hit.entity.id)) {
    viewer.selectedEntity = hit.entity;
    showEntity(live.payloadOf(hit.entity.id));
  } else if (hit.entity && properties) {
    showEntity(properties.getValue(viewer.clock.currentTime));
  } else if (hit.lon !== undefined) {
    viewer.selectedEntity = undefined;
    pickGround(hit.lon, hit.lat);
  }
}

const handler = new Cesium.ScreenSpaceEventHandler(viewer.scene.canvas);
handler.setInputAction((event) => onClick(event.position), Cesium.ScreenSpaceEventType.LEFT_CLICK);
let lastMove = 0;
handler.setInputAction((event) => {
  const now = performance.now();
  if (now - lastMove < 100) return;
  lastMove = now;
  const cartesian = viewer.camera.pickEllipsoid(event.endPosition, viewer.scene.globe.ellipsoid);
  if (!cartesian) return;
  const carto = Cesium.Cartographic.fromCartesian(cartesian);
  $("pointer-pos").textContent =
    `${Cesium.Math.toDegrees(carto.longitude).toFixed(6)}°E  ${Cesium.Math.toDegrees(carto.latitude).toFixed(6)}°N`;
}, Cesium.ScreenSpaceEventType.MOUSE_MOVE);

setupSearch({
  input: $("search-input"),
  results: $("search-results"),
  onChoose: (item) => (item.kind === "camera" ? openCamera(item.id) : selectElement(item.id, { fly: true })).catch(() => {}),
  onAr: (item) => openCamera(item.id).catch(() => {}),
});

// -- live entities, cameras, vectors ----------------------------------------------------------

const live = new LiveLayer(viewer, { onChange: (count) => ($("entity-count").textContent = String(count)) });
live.setScale(textScale());
const declutter = new Declutter(viewer, () => live.labels(), { fontPx: () => 13 * live.scale });
const vectors = new VectorLayers(viewer);
vectors.setScale(textScale());

const cameras = setupCameras({
  viewer,
  container: $("right-column"),
  live,
  selectElement: (id) => selectElement(id).catch(() => {}),
  showEntity,
  moved: (record) => {
    const pose = $("camera-pose");
    if (pose && $("panel").dataset.elementId === record.id) pose.textContent = poseText(record);
  },
});

// -- alerts, symbols, boards, access ----------------------------------------------------------

const symbols = new AlertSymbols(viewer, $("alert-symbols"), (id) => select(id).catch(() => {}));

function alertsChanged() {
  const open = alerts.open;
  const critical = open.filter((a) => a.severity === "critical").length;
  $("alert-count").textContent = String(open.length);
  $("critical-count").hidden = !critical;
  $("critical-count").textContent = t("stat.critical", { n: critical });
  const shown = alerts.shown.length;
  $("alert-shown").textContent = shown === open.length ? "" : t("alerts.shownOf", { shown, total: open.length });
  symbols.set(alerts.shown);
  if (page.selectedAlert && $("panel").dataset.alertId === page.selectedAlert) panel.redraw();
}

const alerts = new AlertList({
  list: $("alert-list"),
  empty: $("alert-empty"),
  error: $("alert-error"),
  filters: $("alert-filters"),
  bulk: $("alert-bulk"),
  held: $("alert-held"),
  onOpen: (alert) => openAlert(alert),
  onCamera: (id, alert) => openCamera(id, { focusId: alert.element_id }).catch(() => {}),
  onChange: alertsChanged,
  onFilter: (filter) => boards.setActive(filter.board, filter.unit),
});

const boards = new BoardsPanel({
  root: $("boards"),
  units: $("units"),
  onData: (data) => {
    alerts.setBoards(data);
    alerts.render();
  },
  onBoard: (id) => alerts.setFilter({ board: alerts.filter.board === id ? "" : id, app: "" }),
  onUnit: (unit) => alerts.setFilter({ unit: alerts.filter.unit === unit ? "" : unit }),
});

// Controls that need a permission appear once GET /api/me says the role has it.
const access = new Access({
  badge: $("role"),
  onChange: () => {
    alerts.setMayAct(access.can("alerts"));
    boards.setMayConfigure(access.can("admin"));
    panel.redraw();
  },
});

// -- replay and history -----------------------------------------------------------------------

// The time bar: replay a past moment from the history API; live updates keep arriving meanwhile
// (hidden), so "back to live" is instant.
const replay = new Replay(viewer, {
  live,
  onTick: (replayState) => timebar.update(replayState),
  onError: (err) => alerts.showError(t("replay.failed", { detail: err.message })),
});
const timebar = new TimeBar({
  root: $("timebar"),
  toggle: $("replay-toggle"),
  replay,
  onModeChange: (replaying) => {
    document.body.classList.toggle("replaying", replaying);
    $("replay-toggle").textContent = t(replaying ? "replay.back" : "replay.open");
  },
  onError: (err) => alerts.showError(t("replay.failed", { detail: err.message })),
});
const asTime = (time) => (typeof time === "number" ? time : Date.parse(time));
twin.replay = {
  /** Replay from `time` (ISO or epoch ms) at `speed` (1–60); paused unless `play`. */
  start: (time, { speed = 1, play = false } = {}) => timebar.open(asTime(time), { speed, paused: !play }),
  seek: (time) => replay.seek(asTime(time)),
  play: () => replay.play(),
  pause: () => replay.pause(),
  stop: () => timebar.close(),
  state: () => replay.state(),
  positionOf: (id) => replay.positionOf(id),
};

const alertHistory = new AlertHistory({
  root: $("history"),
  onOpen: (alert) => {
    alertHistory.hide();
    openAlert(alert);
  },
});
$("history-open").addEventListener("click", () => {
  const apps = ((boards.data && boards.data.boards) || []).flatMap((b) => b.apps || []);
  alertHistory.show({ units: [...alerts.units].sort(), apps }).catch((err) => alertHistory.showError(err));
});

// -- layers, wall, sound, language ------------------------------------------------------------

const layers = new LayerSwitcher($("layers"), {
  buildings: (on) => ((page.layers.buildings = on), restyle()),
  terrain: (on) => ((page.layers.terrain = on), restyle()),
  roads: (on) => vectors.setLayer("roads", on),
  water: (on) => vectors.setLayer("water", on),
  jurisdictions: (on) => vectors.setLayer("jurisdictions", on),
  cameras: (on) => cameras.layer.setVisible(on),
  footprints: (on) => cameras.layer.setFootprints(on),
  people: (on) => (live.setLayer("people", on), declutter.soon()),
  vehicles: (on) => (live.setLayer("vehicles", on), declutter.soon()),
  sensors: (on) => (live.setLayer("sensors", on), vectors.setLayer("sensors", on)),
  alerts: (on) => symbols.setVisible(on),
});

const sound = new AlertSound();
function showSound() {
  const button = $("sound-switch");
  button.textContent = t(sound.on ? "sound.on" : "sound.off");
  button.setAttribute("aria-pressed", String(sound.on));
}
$("sound-switch").addEventListener("click", () => (sound.set(!sound.on), showSound()));

const wall = new WallMode({
  feed: $("alert-list"),
  onChange: (on) => {
    sound.setDefault(on);
    showSound();
    $("wall-switch").textContent = t(on ? "wall.leave" : "wall.enter");
    $("wall-switch").setAttribute("aria-pressed", String(on));
    // Sizes follow the root font size, which wall mode changes: scale the map's symbols too.
    requestAnimationFrame(() => {
      live.setScale(textScale());
      vectors.setScale(textScale());
      declutter.soon();
      window.dispatchEvent(new Event("twin:layout"));
    });
  },
});
$("wall-switch").addEventListener("click", () => wall.set(!wall.on, { fullscreen: true }));
window.addEventListener("resize", () => (live.setScale(textScale()), vectors.setScale(textScale())));

$("lang-switch").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
onLang(() => {
  clock.tick();
  showConnection();
  showTiles();
  showSound();
  $("wall-switch").textContent = t(wall.on ? "wall.leave" : "wall.enter");
  $("replay-toggle").textContent = t(replay.active ? "replay.back" : "replay.open");
  placeCredit(viewer);
  access.render();
  alerts.render();
  boards.render();
  cameras.ar.translate();
  panel.redraw();
  document.title = `${$("district-name").textContent} · ${t("brand.sub")}`;
});

const clock = new Clock({ time: $("clock-time"), date: $("clock-date"), weekday: $("clock-weekday"), zone: $("clock-zone") });

// -- live socket ------------------------------------------------------------------------------

function onAlert(alert) {
  const fresh = alerts.upsert(alert);
  boards.refreshSoon();
  // A new critical incident (not one of the snapshot a connection starts with): chime, and on
  // the wall, show it.
  if (fresh && page.snapshot && alert.status === "new" && alert.severity === "critical") {
    sound.play();
    if (wall.on) openAlert(alert);
  }
}

function onMessage(message) {
  page.messages += 1;
  if (cameras.onMessage(message)) return;
  if (message.topic === "entity") {
    live.update(message.payload);
    declutter.soon();
  } else if (message.topic === "alert") onAlert(message.payload);
  else if (message.topic === "ready") page.snapshot = true;
}

/** After a reconnect or a new sign-in: everything the server may have changed meanwhile. */
function reload() {
  alerts.load().catch((err) => alerts.showError(t("alerts.loadFailed", { detail: err.message })));
  boards.refresh().catch(() => {});
  access.load().catch(() => {});
  cameras.load().catch(() => {});
}

function setConnection(value) {
  const reconnected = value === "open" && page.everOpen;
  page.connection = value;
  if (value === "open") {
    page.connects += 1;
    page.everOpen = true;
  } else {
    page.snapshot = false;
  }
  showConnection();
  if (reconnected) reload();
}

// -- start ------------------------------------------------------------------------------------

async function loadHeader() {
  try {
    const [health, config] = await Promise.all([fetch("/healthz").then((r) => r.json()), fetch("/config.json").then((r) => r.json())]);
    if (health && health.name) $("district-name").textContent = health.name;
    live.configure(config);
  } catch {
    // The header keeps its default name; the status bar shows the connection state.
  }
  document.title = `${$("district-name").textContent} · ${t("brand.sub")}`;
}

/** Performance marks for `python -m bench streaming`: the first building tile drawn. */
function markFirstBuildings(tileset) {
  const remove = tileset.tileVisible.addEventListener((tile) => {
    if (!tile.content || !tile.content.featuresLength) return;
    performance.mark("twin:first-buildings");
    remove();
  });
}

async function loadModel() {
  showTiles();
  try {
    const tileset = await loadTileset(viewer, "/tiles/tileset.json");
    twin.tileset = tileset;
    restyle();
    markFirstBuildings(tileset);
    const sphere = tileset.boundingSphere;
    const home = new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-35), sphere.radius * 1.6);
    twin.home = () => viewer.zoomTo(tileset, home);
    viewer.homeButton.viewModel.command.beforeExecute.addEventListener((event) => {
      event.cancel = true;
      twin.home();
    });
    await twin.home();
    await settle(viewer, tileset);
    performance.mark("twin:tiles-loaded");
    page.tileStatus = "tiles.loaded";
    showTiles();
    document.body.dataset.ready = "1";
    return tileset;
  } catch (err) {
    page.tilesetError = String(err && err.message ? err.message : err);
    page.tileStatus = "tiles.failed";
    showTiles();
    document.body.dataset.ready = "error";
    throw err;
  }
}

function start() {
  showConnection();
  loadHeader();
  // The first API calls ask for a token when none is held (or the one held is refused).
  access.load().catch((err) => alerts.showError(t("role.failed", { detail: err.message })));
  alerts.load().catch((err) => alerts.showError(t("alerts.loadFailed", { detail: err.message })));
  boards.refresh().catch((err) => alerts.showError(t("boards.failed", { detail: err.message })));
  api(`/api/elements${query({ kind: "jurisdiction", geometry: "false", limit: 500 })}`)
    .then((found) => alerts.addUnits((found.items || []).map((el) => el.unit)))
    .catch(() => {});
  const socket = new LiveSocket({
    token: getToken(),
    onMessage,
    onState: setConnection,
    // The socket was refused: the server no longer takes the token (it restarted with new
    // ones). A request through `api` gets the 401 and asks for a token.
    onUnauthorized: () => access.load().catch(() => {}),
    maxDelayMs: 5000,
  });
  socket.connect();
  twin.socket = socket;
  window.addEventListener("twin:token", () => {
    socket.restart(getToken());
    reload();
  });
  // What the first view does not need waits until the model is in (the live layer is kept
  // meanwhile but drawn only then: its icons would cost the first frames their shaders).
  live.source.show = false;
  twin.ready.finally(() => {
    live.source.show = !replay.active;
    cameras.load().catch((err) => console.warn("cameras:", err.message));
    vectors.load().then(() => layers.applyAll()).catch((err) => console.warn("layers:", err.message));
  });
}

/** What the page shows now: the automation handle's `state()` (docs/wall.md). */
function state() {
  return {
    lang: lang(),
    wall: wall.on,
    connected: Boolean(twin.socket && twin.socket.open),
    connection: page.connection,
    live: page.snapshot,
    connects: page.connects,
    alerts: alerts.open.length,
    alertsShown: alerts.shown.length,
    alertSymbols: symbols.count,
    entities: live.count,
    fadedEntities: live.faded,
    labelsShown: declutter.shown,
    renderErrors: guard.count,
    rendering: guard.running,
    frames: page.frames,
    tilesLoaded: Boolean(twin.tileset && twin.tileset.tilesLoaded),
    tilesetError: page.tilesetError,
    selectedId: page.selectedAlert || page.selectedId,
    sound: { on: sound.on, played: sound.played },
    layers: { ...layers.state },
    projections: cameras.projection.ids,
  };
}

Object.assign(twin, {
  select,
  openCamera,
  setLang,
  setWall: (on) => wall.set(on),
  state,
  live,
  alerts,
  symbols,
  boards,
  access,
  layers,
  vectors,
  sound,
  wall,
  guard,
  declutter,
  history: alertHistory,
  cameras: cameras.layer,
  ar: cameras.ar,
  projection: cameras.projection,
  selectElement: (id) => selectElement(id),
  flyTo: (lon, lat, height = 0, range = 450) => flyToPoint(viewer, lon, lat, height, range),
  settle: () => settle(viewer, twin.tileset),
});
twin.ready.catch(() => {});
wall.set(params.get("wall") === "1");
start();
