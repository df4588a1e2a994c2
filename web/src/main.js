// The war-room page: wires the globe, the side panel, search, the live layer and the alert feed.
// Exposes `window.twin` for operators' consoles and the browser tests.
import { Access } from "./access.js";
import { AlertList, alertEntity } from "./alerts.js";
import { api, ApiError, query } from "./api.js";
import { adoptUrlToken, getToken } from "./auth.js";
import { BoardsPanel } from "./boards.js";
import { setupCameras } from "./cameras.js";
import { formatTime } from "./dom.js";
import { LiveLayer, LiveSocket } from "./live.js";
import { AlertHistory } from "./history.js";
import { Panel } from "./panel.js";
import { Replay } from "./replay.js";
import { setupSearch } from "./search.js";
import { TimeBar } from "./timebar.js";
import { buildingStyle, createViewer, flyToPoint, loadTileset, pickAt, settle } from "./viewer.js";

const Cesium = window.Cesium;
const $ = (id) => document.getElementById(id);

const CONNECTION_TEXT = {
  connecting: "连接中 Connecting",
  open: "实时在线 Live",
  closed: "已断开，重连中 Disconnected, retrying",
  unauthorized: "未授权 Not authorised",
};

const state = {
  selectedId: null,
  entityCount: 0,
  alertCount: 0,
  connection: "connecting",
  connects: 0,
  messages: 0,
  liveSnapshot: null,
  tilesetError: null,
};

adoptUrlToken();
const viewer = createViewer($("map"));
const twin = { viewer, tileset: null, state, live: null, alerts: null };
window.twin = twin;

function setConnection(value) {
  state.connection = value;
  if (value === "open") state.connects += 1;
  const conn = $("conn");
  conn.dataset.state = value;
  $("conn-text").textContent = CONNECTION_TEXT[value] || value;
}

const panel = new Panel($("panel"), {
  // A camera listed under "cameras that see it" opens its AR view on the element.
  onSelect: (id) =>
    id.startsWith("camera:")
      ? cameras.ar.open(id, { focusId: state.selectedId }).catch(() => {})
      : selectElement(id, { fly: true }),
  onFly: (lon, lat, height) => flyToPoint(viewer, lon, lat, height),
  onClose: () => highlight(null),
});

function highlight(id) {
  state.selectedId = id;
  if (twin.tileset) twin.tileset.style = buildingStyle(id);
  viewer.scene.requestRender();
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
    if (state.selectedId !== id) return record;
    panel.showElement(record);
    if (fly) flyToPoint(viewer, record.lon, record.lat, (record.base_height ?? 0) + (record.height ?? 0));
    return record;
  } catch (err) {
    if (state.selectedId === id) {
      panel.error(err instanceof ApiError && err.status === 404 ? `未找到 Not found: ${id}` : err.message);
    }
    throw err;
  }
}

/** The element a click on open ground means (GET /api/pick answers its record, or 404). */
async function pickGround(lon, lat) {
  highlight(null);
  const key = `pick:${lon},${lat}`;
  state.selectedId = key;
  try {
    const record = await api(`/api/pick${query({ lon: lon.toFixed(7), lat: lat.toFixed(7) })}`);
    if (state.selectedId !== key) return;
    highlight(record.id);
    panel.showElement(record);
  } catch (err) {
    if (state.selectedId !== key) return;
    if (err instanceof ApiError && err.status === 404) panel.showNothing(lon, lat);
    else panel.error(err.message);
  }
}

function onClick(position) {
  const hit = pickAt(viewer, position);
  if (hit.elementId) {
    selectElement(hit.elementId).catch(() => {});
  } else if (hit.entity && cameras.cameraOf(hit.entity)) {
    const cameraId = cameras.cameraOf(hit.entity);
    cameras.ar.open(cameraId).catch(() => {});
    // Catalog cameras are elements too (`camera:…`); live drones are not.
    if (cameraId.startsWith("camera:")) selectElement(cameraId).catch(() => {});
  } else if (hit.entity) {
    highlight(null);
    viewer.selectedEntity = hit.entity;
    panel.showEntity(hit.entity.properties ? hit.entity.properties.getValue(viewer.clock.currentTime) : { id: hit.entity.id });
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
  onChoose: (item) => selectElement(item.id, { fly: true }).catch(() => {}),
});

const live = new LiveLayer(viewer, {
  onChange: (count) => {
    state.entityCount = count;
    $("entity-count").textContent = String(count);
  },
});
twin.live = live;

const cameras = setupCameras({
  viewer,
  container: $("layout"),
  live,
  selectElement: (id) => selectElement(id).catch(() => {}),
  showEntity: (payload) => {
    highlight(null);
    panel.showEntity(payload);
  },
});
Object.assign(twin, { cameras: cameras.layer, ar: cameras.ar, projection: cameras.projection });

/** Fly to an alert's place and open what it concerns: its element, else its live entity. */
function openAlert(alert) {
  flyToPoint(viewer, alert.lon, alert.lat, alert.height || 0, 350);
  if (alert.element_id) {
    selectElement(alert.element_id).catch(() => {});
    return;
  }
  highlight(null);
  const entity = alert.entity_id ? live.getById(alert.entity_id) : undefined;
  viewer.selectedEntity = entity;
  panel.showEntity(entity ? entity.properties.getValue(viewer.clock.currentTime) : alertEntity(alert));
}

const alerts = new AlertList({
  list: $("alert-list"),
  empty: $("alert-empty"),
  error: $("alert-error"),
  boardSelect: $("alert-board"),
  unitSelect: $("alert-unit"),
  onFly: openAlert,
  // A camera that sees the alert's place: its record, and its AR view on that place.
  onCamera: (id, alert) => {
    selectElement(id).catch(() => {});
    cameras.ar.open(id, { focusId: alert.element_id }).catch(() => {});
  },
  onCount: (count, shown) => {
    state.alertCount = count;
    $("alert-count").textContent = String(count);
    $("alert-shown").textContent = shown === count ? "" : `${shown} / ${count}`;
  },
  onFilter: (filter) => boards.setActive(filter.board),
});
twin.alerts = alerts;

const boards = new BoardsPanel({
  root: $("boards"),
  onData: (data) => alerts.setBoards(data),
  onBoard: (id) => alerts.setFilter({ board: alerts.filter.board === id ? "" : id }),
});
twin.boards = boards;

// Controls that need a permission appear once GET /api/me says the role has it.
const access = new Access({
  badge: $("role"),
  onChange: () => {
    alerts.setMayAct(access.can("alerts"));
    boards.setMayConfigure(access.can("admin"));
  },
});
twin.access = access;

// The time bar: replay a past moment from the history API; live updates keep arriving meanwhile
// (hidden), so "back to live" is instant.
const replay = new Replay(viewer, {
  live,
  onTick: (replayState) => timebar.update(replayState),
  onError: (err) => alerts.showError(`回放失败 Replay: ${err.message}`),
});
const timebar = new TimeBar({
  root: $("timebar"),
  toggle: $("replay-toggle"),
  replay,
  onModeChange: (replaying) => {
    document.body.classList.toggle("replaying", replaying);
    $("replay-toggle").textContent = replaying ? "返回实时 Back to live" : "回放 Replay";
  },
  onError: (err) => alerts.showError(`回放失败 Replay: ${err.message}`),
});
twin.replay = {
  /** Replay from `time` (ISO or epoch ms) at `speed` (1–60); paused unless `play`. */
  start: (time, { speed = 1, play = false } = {}) =>
    timebar.open(typeof time === "number" ? time : Date.parse(time), { speed, paused: !play }),
  seek: (time) => replay.seek(typeof time === "number" ? time : Date.parse(time)),
  play: () => replay.play(),
  pause: () => replay.pause(),
  stop: () => timebar.close(),
  state: () => replay.state(),
  positionOf: (id) => replay.positionOf(id),
};

const alertHistory = new AlertHistory({
  root: $("history"),
  onFly: (alert) => {
    alertHistory.hide();
    openAlert(alert);
  },
});
twin.history = alertHistory;
$("history-open").addEventListener("click", () => {
  const apps = (boards.data && boards.data.boards ? boards.data.boards : []).flatMap((b) => b.apps || []);
  alertHistory.show({ units: [...alerts.units].sort(), apps }).catch((err) => alertHistory.showError(err));
});

function onAlert(alert) {
  alerts.upsert(alert);
  boards.refreshSoon();
}

function onMessage(message) {
  state.messages += 1;
  if (cameras.onMessage(message)) return;
  if (message.topic === "entity") live.update(message.payload);
  else if (message.topic === "alert") onAlert(message.payload);
  else if (message.topic === "ready") state.liveSnapshot = message.payload;
}

setInterval(() => {
  $("clock").textContent = formatTime(new Date().toISOString());
}, 1000);

async function loadHeader() {
  try {
    const response = await fetch("/healthz");
    const body = await response.json();
    if (body && body.name) {
      $("district-name").textContent = body.name;
      document.title = `${body.name} · 作战指挥大屏`;
    }
  } catch {
    // The header keeps its default name; the status bar shows the connection state.
  }
}

async function loadModel() {
  const status = $("tiles-status");
  try {
    const tileset = await loadTileset(viewer, "/tiles/tileset.json");
    twin.tileset = tileset;
    tileset.style = buildingStyle(state.selectedId);
    const sphere = tileset.boundingSphere;
    viewer.homeButton.viewModel.command.beforeExecute.addEventListener((event) => {
      event.cancel = true;
      viewer.zoomTo(tileset, new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-35), sphere.radius * 1.6));
    });
    await viewer.zoomTo(tileset, new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-35), sphere.radius * 1.6));
    await settle(viewer, tileset);
    status.textContent = "模型已加载 Model loaded";
    document.body.dataset.ready = "1";
    return tileset;
  } catch (err) {
    state.tilesetError = String(err && err.message ? err.message : err);
    status.textContent = `模型加载失败 Model failed: ${state.tilesetError}`;
    status.classList.add("error");
    document.body.dataset.ready = "error";
    throw err;
  }
}

async function start() {
  loadHeader();
  // The first API calls ask for a token when none is held (or the one held is refused).
  access.load().catch((err) => alerts.showError(`角色未知 Role: ${err.message}`));
  await alerts.load().catch((err) => alerts.showError(`告警加载失败 Alerts: ${err.message}`));
  boards.refresh().catch((err) => alerts.showError(`看板加载失败 Boards: ${err.message}`));
  api(`/api/elements${query({ kind: "jurisdiction", geometry: "false", limit: 500 })}`)
    .then((page) => alerts.addUnits((page.items || []).map((el) => el.unit)))
    .catch(() => {});
  const socket = new LiveSocket({
    token: getToken(),
    onMessage,
    onState: setConnection,
    // The socket was refused: a request through `api` asks for a token on 401.
    onUnauthorized: () => api("/api/live").catch(() => {}),
  });
  socket.connect();
  twin.socket = socket;
  window.addEventListener("twin:token", () => {
    socket.restart(getToken());
    access.load().catch(() => {});
  });
}

Object.assign(twin, {
  ready: loadModel(),
  selectElement: (id) => selectElement(id),
  flyTo: (lon, lat, height = 0, range = 450) => flyToPoint(viewer, lon, lat, height, range),
  settle: () => settle(viewer, twin.tileset),
  entityCount: () => live.count,
});
twin.ready.catch(() => {});
start();
