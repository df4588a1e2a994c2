// Replay: entities and alerts as they were at a past moment, from the history API
// (GET /api/history/replay for positions, GET /api/history/alerts for alerts), drawn in their own
// layer while the live layer hides. Time moves at 1×–60× from a chosen moment; history is fetched
// in windows ahead of the replay time. Positions are lon/lat degrees, ellipsoidal height metres;
// times are epoch milliseconds.
import { titleOf } from "./alertdata.js";
import { api, query } from "./api.js";
import { entityIcon, iconClass, SEVERITY_COLOURS } from "./icons.js";
import { markerGraphics } from "./markers.js";

const Cesium = window.Cesium;
export const SPEEDS = [1, 5, 10, 30, 60];
const STALE_MS = 30000; // an entity unseen this long before the replay time is not drawn
const TICK_MS = 200;

/** Seconds between samples and milliseconds of history per request at `speed`. */
function windowFor(speed) {
  const step = speed <= 5 ? 1 : speed <= 30 ? 2 : 5;
  return { stepS: step, spanMs: Math.min(3600000, Math.max(60000, speed * 60000)) };
}

/** Index of the last sample at or before `t` in time-ordered `samples` ([ms, lon, lat, h]). */
function lastAtOrBefore(samples, t) {
  let lo = 0;
  let hi = samples.length - 1;
  if (hi < 0 || samples[0][0] > t) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (samples[mid][0] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Where an entity with `samples` is at `t`: interpolated between the samples around it. */
export function positionAt(samples, t) {
  const i = lastAtOrBefore(samples, t);
  if (i < 0 || t - samples[i][0] > STALE_MS) return null;
  const a = samples[i];
  const b = samples[i + 1];
  if (!b || b[0] === a[0]) return { lon: a[1], lat: a[2], height: a[3] };
  const f = Math.min(1, (t - a[0]) / (b[0] - a[0]));
  return { lon: a[1] + (b[1] - a[1]) * f, lat: a[2] + (b[2] - a[2]) * f, height: a[3] + (b[3] - a[3]) * f };
}

/** The replay layer and its clock. */
export class Replay {
  /**
   * @param {any} viewer the Cesium viewer
   * @param {{live: {source: any}, onTick?: (state: any) => void, onError?: (err: Error) => void}} parts
   */
  constructor(viewer, { live, onTick = () => {}, onError = () => {} }) {
    this.viewer = viewer;
    this.live = live;
    this.onTick = onTick;
    this.onError = onError;
    this.source = new Cesium.CustomDataSource("replay");
    this.source.show = false;
    viewer.dataSources.add(this.source);
    this.active = false;
    this.playing = false;
    this.speed = 1;
    this.time = 0;
    this.tracks = new Map(); // entity id -> {kind, cls, source, samples}
    this.alerts = new Map(); // alert id -> alert
    this.loaded = []; // [fromMs, toMs) windows fetched
    this.pending = null;
    this.timer = 0;
    this.lastTick = 0;
  }

  /** Start replaying at `timeMs` (epoch ms) at `speed` (playing unless `paused`). */
  async start(timeMs, { speed = 1, paused = false } = {}) {
    this.active = true;
    this.live.source.show = false;
    this.source.show = true;
    this.speed = speed;
    this.playing = !paused;
    await this.seek(timeMs);
    if (!this.timer) this.timer = setInterval(() => this.tick(), TICK_MS);
    this.lastTick = performance.now();
  }

  /** Back to live: the replay layer goes, the live layer shows again. */
  stop() {
    this.active = false;
    this.playing = false;
    clearInterval(this.timer);
    this.timer = 0;
    this.source.entities.removeAll();
    this.source.show = false;
    this.live.source.show = true;
    this.tracks.clear();
    this.alerts.clear();
    this.loaded = [];
    this.viewer.scene.requestRender();
    this.onTick(this.state());
  }

  play() {
    this.playing = true;
    this.lastTick = performance.now();
    this.onTick(this.state());
  }

  pause() {
    this.playing = false;
    this.onTick(this.state());
  }

  setSpeed(speed) {
    this.speed = speed;
    this.onTick(this.state());
  }

  /** Jump to `timeMs`: fetch what it needs, then draw. */
  async seek(timeMs) {
    this.time = timeMs;
    await this.ensure(timeMs);
    this.render();
  }

  /** Fetch the history window holding `timeMs` (and from STALE_MS before it) unless loaded. */
  async ensure(timeMs) {
    const from = timeMs - STALE_MS;
    const covered = this.loaded.some(([a, b]) => a <= from && timeMs + 1000 < b);
    if (covered) return;
    if (this.pending) await this.pending;
    if (this.loaded.some(([a, b]) => a <= from && timeMs + 1000 < b)) return;
    const { stepS, spanMs } = windowFor(this.speed);
    this.pending = this.fetchWindow(from, timeMs + spanMs, stepS);
    try {
      await this.pending;
    } finally {
      this.pending = null;
    }
  }

  async fetchWindow(fromMs, toMs, stepS) {
    const iso = (ms) => new Date(ms).toISOString();
    const [positions, alerts] = await Promise.all([
      api(`/api/history/replay${query({ from: iso(fromMs), to: iso(toMs), step_s: stepS })}`),
      api(`/api/history/alerts${query({ from: iso(fromMs - 3600000), to: iso(toMs), limit: 1000 })}`),
    ]);
    for (const entity of positions.entities || []) {
      const known = this.tracks.get(entity.id);
      if (!known) {
        this.tracks.set(entity.id, { ...entity, samples: entity.samples.slice() });
        continue;
      }
      const merged = new Map(known.samples.map((s) => [s[0], s]));
      for (const s of entity.samples) merged.set(s[0], s);
      known.samples = [...merged.values()].sort((a, b) => a[0] - b[0]);
    }
    for (const alert of alerts.items || []) this.alerts.set(alert.id, alert);
    this.loaded.push([fromMs, toMs]);
  }

  /** Advance the clock (when playing) and fetch ahead before the loaded window runs out. */
  tick() {
    const now = performance.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    if (!this.active) return;
    if (this.playing) {
      this.time = Math.min(Date.now(), this.time + elapsed * this.speed);
      const { spanMs } = windowFor(this.speed);
      const ahead = this.time + spanMs / 2;
      if (!this.pending && !this.loaded.some(([a, b]) => a <= ahead && ahead < b)) {
        this.ensure(ahead).catch((err) => this.onError(err));
      }
      if (!this.loaded.some(([a, b]) => a <= this.time && this.time < b)) {
        this.ensure(this.time).catch((err) => this.onError(err));
      }
    }
    this.render();
  }

  /** Draw the entities and the alerts open at the replay time. */
  render() {
    const t = this.time;
    const entities = this.source.entities;
    entities.suspendEvents();
    for (const [id, track] of this.tracks) {
      const where = positionAt(track.samples, t);
      let entity = entities.getById(id);
      if (!where) {
        if (entity) entity.show = false;
        continue;
      }
      if (!entity) {
        entity = entities.add({
          id,
          billboard: {
            image: entityIcon(iconClass({ kind: track.kind, cls: track.cls }), { still: true }),
            disableDepthTestDistance: Number.POSITIVE_INFINITY,
          },
        });
        entity.properties = new Cesium.PropertyBag({ id, kind: track.kind, cls: track.cls, source: track.source });
      }
      entity.show = true;
      entity.position = Cesium.Cartesian3.fromDegrees(where.lon, where.lat, where.height);
    }
    for (const alert of this.alerts.values()) {
      const id = `alert:${alert.id}`;
      const created = Date.parse(alert.created_at);
      const closedAt = alert.resolved_at || alert.false_alarm_at;
      const open = created <= t && (!closedAt || Date.parse(closedAt) > t);
      let entity = entities.getById(id);
      if (!open) {
        if (entity) entity.show = false;
        continue;
      }
      if (!entity) {
        entity = entities.add({
          id,
          position: Cesium.Cartesian3.fromDegrees(alert.lon, alert.lat, alert.height || 0),
          ...markerGraphics({ pixelSize: 18, outline: "#ffffff", labelOffset: 20, maxDistance: 6000 }),
        });
        entity.point.color = Cesium.Color.fromCssColorString(SEVERITY_COLOURS[alert.severity] || "#ffb020");
        entity.label.text = titleOf(alert);
        entity.properties = new Cesium.PropertyBag({ alert_id: alert.id, title: alert.title });
      }
      entity.show = true;
    }
    entities.resumeEvents();
    this.viewer.scene.requestRender();
    this.onTick(this.state());
  }

  /** What the replay shows now (for the time bar and `window.twin`). */
  state() {
    const shown = this.source.entities.values.filter((e) => e.show);
    return {
      active: this.active,
      playing: this.playing,
      speed: this.speed,
      time: this.active ? new Date(this.time).toISOString() : null,
      entities: shown.filter((e) => !String(e.id).startsWith("alert:")).length,
      alerts: shown.filter((e) => String(e.id).startsWith("alert:")).length,
    };
  }

  /** Where the replay draws entity `id` now ({lon, lat, height} degrees/metres), or null. */
  positionOf(id) {
    const entity = this.source.entities.getById(id);
    if (!entity || !entity.show) return null;
    const position = entity.position.getValue(this.viewer.clock.currentTime);
    const carto = Cesium.Cartographic.fromCartesian(position);
    return {
      lon: Cesium.Math.toDegrees(carto.longitude),
      lat: Cesium.Math.toDegrees(carto.latitude),
      height: carto.height,
    };
  }
}
