// The live layer: a WebSocket to /ws/live (reconnecting with backoff) and one Cesium entity per
// live track: an icon per class (person, car, bus, truck, bicycle, plate-read vehicle, sensor)
// turned to its heading, a short trail of where it was, a label placed by the declutter pass.
// An entity not updated for `staleS` seconds (TWIN_ENTITY_STALE_S, from /config.json) is drawn
// faded, and leaves after `ttlS`. Positions are lon/lat degrees and ellipsoidal height in
// metres, drawn where they are (not clamped to the ground).
import { CLASS_COLOURS, entityIcon, iconClass } from "./icons.js";

const Cesium = window.Cesium;

// Close codes of /ws/live when the token is missing/unknown or lacks the read role.
export const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const LIVE_TOPICS = "entities,alert,camera,drone";
const TRAIL_POINTS = 12;
const TRAIL_MS = 30000;
const MIN_MOVE_M = 0.7; // a smaller step does not change the heading
const FADED_ALPHA = 0.35;
const LAYER_OF_KIND = { person: "people", vehicle: "vehicles", environment: "sensors", object: "vehicles" };

/** Heading (deg clockwise from north) from one lon/lat to the next, and the distance (m). */
function bearing(from, to) {
  const mx = 111320 * Math.cos((from.lat * Math.PI) / 180);
  const dx = (to.lon - from.lon) * mx;
  const dy = (to.lat - from.lat) * 110540;
  return { heading: ((Math.atan2(dx, dy) * 180) / Math.PI + 360) % 360, metres: Math.hypot(dx, dy) };
}

/** The label text of an entity: its class, a plate's masked form, a sensor's reading. */
export function labelText(payload) {
  const attributes = payload.attributes || {};
  if (attributes.plate_masked) return String(attributes.plate_masked);
  if (payload.kind === "environment" && payload.cls && attributes[payload.cls] !== undefined) {
    return `${payload.cls} ${attributes[payload.cls]}`;
  }
  return payload.cls || payload.kind || "";
}

/** Cesium entities for live tracks, keyed by the payload id (`source/track_id`). */
export class LiveLayer {
  /**
   * @param {any} viewer
   * @param {{staleS?: number, ttlS?: number, onChange?: (count: number) => void}} options
   */
  constructor(viewer, { staleS = 10, ttlS = 30, onChange = () => {} } = {}) {
    this.viewer = viewer;
    this.staleS = staleS;
    this.ttlS = ttlS;
    this.onChange = onChange;
    this.scale = 1;
    this.source = new Cesium.CustomDataSource("live");
    this.tracks = new Map(); // id -> {payload, seen (ms), heading, trail: [{lon, lat, h, at}], faded}
    this.hiddenLayers = new Set();
    this.selectedId = null;
    viewer.dataSources.add(this.source);
    this.timer = setInterval(() => this.prune(), 1000);
  }

  get count() {
    return this.tracks.size;
  }

  getById(id) {
    return this.source.entities.getById(id);
  }

  /** The latest payload of entity `id`, or undefined. */
  payloadOf(id) {
    const track = this.tracks.get(id);
    return track && track.payload;
  }

  /** Seconds after which entities fade, and after which they leave (server settings). */
  configure({ entity_stale_s: staleS, live_ttl_s: ttlS }) {
    if (staleS > 0) this.staleS = staleS;
    if (ttlS > 0) this.ttlS = Math.max(ttlS, this.staleS);
    this.prune();
  }

  /** Icon and label size factor (the page's text scale). */
  setScale(scale) {
    if (scale === this.scale) return;
    this.scale = scale;
    for (const [id, track] of this.tracks) this.style(this.getById(id), track);
  }

  /** Show or hide a layer of entities: "people", "vehicles" or "sensors". */
  setLayer(layer, on) {
    if (on) this.hiddenLayers.delete(layer);
    else this.hiddenLayers.add(layer);
    for (const [id, track] of this.tracks) {
      const entity = this.getById(id);
      entity.show = this.visible(track.payload);
      const trail = this.getById(`${id}#trail`);
      if (trail) trail.show = entity.show && !track.faded;
    }
    this.viewer.scene.requestRender();
  }

  visible(payload) {
    return !this.hiddenLayers.has(LAYER_OF_KIND[payload.kind] || "vehicles");
  }

  /** Create or move the entity of one `entity` message payload. */
  update(payload) {
    if (!payload || !payload.id) return;
    const now = Date.now();
    let track = this.tracks.get(payload.id);
    const here = { lon: payload.lon, lat: payload.lat, h: payload.height || 0, at: now };
    if (!track) {
      track = { payload, seen: now, heading: null, trail: [here], faded: false };
      this.tracks.set(payload.id, track);
    } else {
      const last = track.trail[track.trail.length - 1];
      const step = bearing(last, here);
      if (step.metres >= MIN_MOVE_M) {
        track.heading = step.heading;
        track.trail.push(here);
      }
      track.trail = track.trail.filter((p) => now - p.at <= TRAIL_MS).slice(-TRAIL_POINTS);
      if (!track.trail.length) track.trail.push(here);
      track.payload = payload;
      track.seen = now;
    }
    const told = Number((payload.attributes || {}).heading);
    if (Number.isFinite(told)) track.heading = told;
    const entity =
      this.getById(payload.id) ||
      this.source.entities.add({
        id: payload.id,
        billboard: {
          disableDepthTestDistance: Number.POSITIVE_INFINITY,
          alignedAxis: Cesium.Cartesian3.UNIT_Z,
        },
        label: {
          fillColor: Cesium.Color.WHITE,
          outlineColor: Cesium.Color.BLACK,
          outlineWidth: 3,
          style: Cesium.LabelStyle.FILL_AND_OUTLINE,
          verticalOrigin: Cesium.VerticalOrigin.BOTTOM,
          disableDepthTestDistance: Number.POSITIVE_INFINITY,
          distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, 2500),
          show: false,
        },
      });
    track.faded = false;
    entity.position = Cesium.Cartesian3.fromDegrees(payload.lon, payload.lat, payload.height || 0);
    entity.properties = new Cesium.PropertyBag({ ...payload });
    entity.show = this.visible(payload);
    this.style(entity, track);
    this.drawTrail(payload.id, track, entity.show);
    this.viewer.scene.requestRender();
    this.onChange(this.count);
  }

  /** Icon, heading, label and fading of one entity. */
  style(entity, track) {
    const cls = iconClass(track.payload);
    const billboard = entity.billboard;
    billboard.image = entityIcon(cls, { scale: this.scale, still: track.heading === null });
    billboard.rotation = track.heading === null ? 0 : Cesium.Math.toRadians(-track.heading);
    billboard.color = Cesium.Color.WHITE.withAlpha(track.faded ? FADED_ALPHA : 1);
    const label = entity.label;
    label.text = labelText(track.payload);
    label.font = `600 ${Math.round(13 * this.scale)}px 'Noto Sans CJK SC', 'Noto Sans', sans-serif`;
    label.pixelOffset = new Cesium.Cartesian2(0, -17 * this.scale);
    label.fillColor = Cesium.Color.WHITE.withAlpha(track.faded ? FADED_ALPHA : 1);
    entity.iconClass = cls;
  }

  drawTrail(id, track, show) {
    const key = `${id}#trail`;
    let trail = this.getById(key);
    if (track.trail.length < 2) {
      if (trail) trail.show = false;
      return;
    }
    const positions = track.trail.map((p) => Cesium.Cartesian3.fromDegrees(p.lon, p.lat, p.h));
    if (!trail) {
      const colour = Cesium.Color.fromCssColorString(CLASS_COLOURS[iconClass(track.payload)] || "#ffffff");
      trail = this.source.entities.add({
        id: key,
        polyline: { width: 3, arcType: Cesium.ArcType.NONE, material: colour.withAlpha(0.55) },
      });
    }
    trail.polyline.positions = positions;
    trail.show = show && !track.faded;
  }

  /** Labels for the declutter pass: the selected entity first, plates, vehicles, people. */
  labels() {
    const time = this.viewer.clock.currentTime;
    const rank = { plate: 4, truck: 3, bus: 3, car: 2, bicycle: 2, environment: 2, person: 1 };
    const items = [];
    for (const [id, track] of this.tracks) {
      const entity = this.getById(id);
      if (!entity.show || track.faded) {
        entity.label.show = false;
        continue;
      }
      items.push({
        label: entity.label,
        position: entity.position.getValue(time),
        text: labelText(track.payload),
        priority: (id === this.selectedId ? 10 : 0) + (rank[entity.iconClass] || 0),
      });
    }
    return items;
  }

  /** Fade entities not updated for `staleS`, remove those not updated for `ttlS`. */
  prune(now = Date.now()) {
    let removed = 0;
    let changed = false;
    for (const [id, track] of this.tracks) {
      const age = (now - track.seen) / 1000;
      if (age > this.ttlS) {
        this.source.entities.removeById(id);
        this.source.entities.removeById(`${id}#trail`);
        this.tracks.delete(id);
        removed += 1;
      } else if (age > this.staleS && !track.faded) {
        track.faded = true;
        const entity = this.getById(id);
        this.style(entity, track);
        this.drawTrail(id, track, entity.show);
        changed = true;
      }
    }
    if (removed || changed) {
      this.viewer.scene.requestRender();
      this.onChange(this.count);
    }
    return removed;
  }

  /** How many entities are drawn faded (stale). */
  get faded() {
    let n = 0;
    for (const track of this.tracks.values()) if (track.faded) n += 1;
    return n;
  }
}

/**
 * A WebSocket to /ws/live that reconnects with exponential backoff (1 s … `maxDelayMs`).
 * `onState` gets "connecting" | "open" | "closed" | "unauthorized"; `onMessage` gets each parsed
 * message. After a refused token (4401/4403) it waits for `restart` with a new one.
 */
export class LiveSocket {
  constructor({ token, onMessage, onState, onUnauthorized = () => {}, maxDelayMs = 10000 }) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
    this.onMessage = onMessage;
    this.onState = onState;
    this.maxDelayMs = maxDelayMs;
    this.delay = 1000;
    this.socket = null;
    this.timer = 0;
    this.stopped = false;
    // The stream id of the last message seen (servers sharing a Redis stream number them): a
    // reconnect, to whichever server process, asks for what came after it.
    this.lastId = null;
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    // Entity updates coalesced by the server (`entities` batches), handed on one by one below.
    const token = this.token ? `token=${encodeURIComponent(this.token)}&` : "";
    const since = this.lastId ? `&since=${encodeURIComponent(this.lastId)}` : "";
    return `${scheme}//${window.location.host}/ws/live?${token}topics=${LIVE_TOPICS}${since}`;
  }

  connect() {
    if (this.stopped) return;
    this.onState("connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 1000;
      this.onState("open");
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof message.id === "string") this.lastId = message.id;
      if (message.topic === "entities" && Array.isArray(message.payload)) {
        for (const payload of message.payload) this.onMessage({ topic: "entity", payload });
      } else {
        this.onMessage(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === CLOSE_UNAUTHORIZED || event.code === CLOSE_FORBIDDEN) {
        this.onState("unauthorized");
        this.onUnauthorized(event.code);
        return;
      }
      this.onState("closed");
      if (this.stopped) return;
      const wait = this.delay;
      this.delay = Math.min(this.delay * 2, this.maxDelayMs);
      this.timer = setTimeout(() => this.connect(), wait);
    });
  }

  /** Reconnect now with a new token (after signing in again). */
  restart(token) {
    this.token = token;
    this.delay = 1000;
    clearTimeout(this.timer);
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    this.connect();
  }

  get open() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }
}
