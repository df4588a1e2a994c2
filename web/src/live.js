// The live layer: a WebSocket to /ws/live (reconnecting with backoff) and one Cesium entity per
// live track (point + label, coloured by kind). Positions are lon/lat degrees and ellipsoidal
// height in metres, drawn where they are (not clamped to the ground).
import { markerGraphics } from "./markers.js";

const Cesium = window.Cesium;

export const KIND_COLOURS = {
  person: "#ffb020",
  vehicle: "#38d6ff",
  object: "#d77bff",
  environment: "#6be58f",
};
const STALE_MS = 60000;
// Close codes of /ws/live when the token is missing/unknown or lacks the read role.
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const LIVE_TOPICS = "entities,alert,camera,drone";

/** Cesium entities for live tracks, keyed by the payload id (`source/track_id`). */
export class LiveLayer {
  constructor(viewer, { staleMs = STALE_MS, onChange = () => {} } = {}) {
    this.viewer = viewer;
    this.staleMs = staleMs;
    this.onChange = onChange;
    this.source = new Cesium.CustomDataSource("live");
    this.lastSeen = new Map();
    viewer.dataSources.add(this.source);
    this.timer = setInterval(() => this.prune(), 5000);
  }

  get count() {
    return this.source.entities.values.length;
  }

  getById(id) {
    return this.source.entities.getById(id);
  }

  /** Create or move the entity of one `entity` message payload. */
  update(payload) {
    if (!payload || !payload.id) return;
    const position = Cesium.Cartesian3.fromDegrees(payload.lon, payload.lat, payload.height || 0);
    const colour = Cesium.Color.fromCssColorString(KIND_COLOURS[payload.kind] || "#ffffff");
    let entity = this.source.entities.getById(payload.id);
    if (!entity) {
      entity = this.source.entities.add({
        id: payload.id,
        ...markerGraphics({ pixelSize: 11, outline: "#0b1220", labelOffset: 16, maxDistance: 3000 }),
      });
    }
    entity.position = position;
    entity.point.color = colour;
    entity.label.text = payload.cls || payload.kind || "";
    entity.properties = new Cesium.PropertyBag({ ...payload });
    entity.description = undefined;
    this.lastSeen.set(payload.id, Date.now());
    this.viewer.scene.requestRender();
    this.onChange(this.count);
  }

  /** Remove entities not updated for `staleMs`. */
  prune(now = Date.now()) {
    let removed = 0;
    for (const [id, seen] of this.lastSeen) {
      if (now - seen > this.staleMs) {
        this.source.entities.removeById(id);
        this.lastSeen.delete(id);
        removed += 1;
      }
    }
    if (removed) {
      this.viewer.scene.requestRender();
      this.onChange(this.count);
    }
    return removed;
  }
}

/**
 * A WebSocket to /ws/live that reconnects with exponential backoff (1 s … 30 s).
 * `onState` gets "connecting" | "open" | "closed" | "unauthorized"; `onMessage` gets each parsed message.
 */
export class LiveSocket {
  constructor({ token, onMessage, onState, onUnauthorized = () => {} }) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
    this.onMessage = onMessage;
    this.onState = onState;
    this.delay = 1000;
    this.socket = null;
    this.stopped = false;
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    // Entity updates coalesced by the server (`entities` batches), handed on one by one below.
    const token = this.token ? `token=${encodeURIComponent(this.token)}&` : "";
    return `${scheme}//${window.location.host}/ws/live?${token}topics=${LIVE_TOPICS}`;
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
      if (message.topic === "entities" && Array.isArray(message.payload)) {
        for (const payload of message.payload) this.onMessage({ topic: "entity", payload });
      } else {
        this.onMessage(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onState(event.code === CLOSE_UNAUTHORIZED ? "unauthorized" : "closed");
      if (event.code === CLOSE_UNAUTHORIZED || event.code === CLOSE_FORBIDDEN) this.onUnauthorized();
      if (this.stopped) return;
      const wait = this.delay;
      this.delay = Math.min(this.delay * 2, 30000);
      setTimeout(() => this.connect(), wait);
    });
  }

  /** Reconnect now with a new token (after signing in again). */
  restart(token) {
    this.token = token;
    this.delay = 1000;
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    this.connect();
  }

  get open() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }
}
