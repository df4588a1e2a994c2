// What the page knows about an alert record (GET /api/alerts, `alert` messages), shared by the
// feed, the alert panel and the map symbols: statuses, the title in the current language, the
// evidence in one line, the filter, the life cycle.
import { formatDuration, known, pick, t } from "./i18n.js";

/** Statuses of an alert that is still open (shown in the feed and on the map). */
export const OPEN_STATUSES = ["new", "acknowledged", "dispatched", "on_scene"];
export const STATUSES = [...OPEN_STATUSES, "resolved", "false_alarm"];
export const SEVERITIES = ["critical", "warning", "info"];
/** Time filter of the feed: minutes since the alert was last seen (0: any time). */
export const TIME_WINDOWS = [0, 15, 60, 24 * 60];

/** Life-cycle steps after creation: status, time field, who field. */
export const LIFE_CYCLE = [
  ["acknowledged", "acknowledged_at", "acknowledged_by"],
  ["dispatched", "dispatched_at", "dispatched_by"],
  ["on_scene", "on_scene_at", "on_scene_by"],
  ["resolved", "resolved_at", "resolved_by"],
  ["false_alarm", "false_alarm_at", "false_alarm_by"],
];

/** Apps by id (id → {title: {zh, en}, board}), from GET /api/boards; set by the boards pane. */
export const APPS = new Map();

/** The alert's title in the current language: its app's title, else the rule's own title. */
export function titleOf(alert) {
  const app = alert.app && APPS.get(alert.app);
  return app ? pick(app.title, alert.title) : alert.title;
}

/** When the alert was last seen (ms): the latest observation, else its creation. */
export function lastSeen(alert) {
  return Date.parse(alert.last_seen_at || alert.observed_at || alert.created_at);
}

/** When the alert was first seen (ms). */
export function firstSeen(alert) {
  return Date.parse(alert.first_seen_at || alert.observed_at || alert.created_at);
}

/** Ids of the observations behind an alert's latest evidence. */
export function observationIds(alert) {
  return (alert.evidence && alert.evidence.observation_ids) || alert.observation_ids || [];
}

/** A reading against its limit: "pm25 92 ug/m3 > 75". */
function readingText(d) {
  const unit = d.unit_of_measure ? ` ${d.unit_of_measure}` : "";
  const sign = d.direction === "below" ? "<" : ">";
  return `${d.attribute || ""} ${d.reading}${unit} ${sign} ${d.limit}`.trim();
}

/**
 * The evidence in parts for one line: [text, isData] pairs (data is shown untranslated), e.g.
 * the listed plate (masked), the rule's figures, the observed class, how many observations.
 */
export function evidenceParts(alert) {
  const evidence = alert.evidence || {};
  const d = evidence.details || {};
  const parts = [];
  if (d.masked) {
    parts.push([t(d.watchlist === "wanted-persons" ? "evidence.identity" : "evidence.plate")]);
    parts.push([String(d.masked), true]);
  }
  if (d.reason) parts.push([String(d.reason), true]);
  if (typeof d.count === "number") parts.push([t("evidence.tracks", { n: d.count })]);
  if (typeof d.dwell_s === "number") parts.push([t("evidence.dwell", { d: formatDuration(d.dwell_s) })]);
  if (d.reading !== undefined && d.limit !== undefined) parts.push([readingText(d), true]);
  if (d.cls && d.cls !== d.attribute) parts.push(known(`cls.${d.cls}`) ? [t(`cls.${d.cls}`)] : [d.cls, true]);
  const ids = observationIds(alert);
  if (ids.length) parts.push([t("evidence.observations", { n: ids.length })]);
  return parts;
}

/**
 * Whether an alert passes the feed's filter ("" or 0 = any).
 * @param {any} alert
 * @param {{severity?: string, board?: string, app?: string, unit?: string, minutes?: number}} filter
 */
export function passes(alert, { severity = "", board = "", app = "", unit = "", minutes = 0 } = {}, now = Date.now()) {
  return (
    (!severity || alert.severity === severity) &&
    (!board || alert.board === board) &&
    (!app || alert.app === app) &&
    (!unit || alert.unit === unit) &&
    (!minutes || now - lastSeen(alert) <= minutes * 60000)
  );
}

/** A live-entity payload (as on `entity` messages) for an alert whose track has left the map. */
export function alertEntity(alert) {
  const details = (alert.evidence && alert.evidence.details) || {};
  return {
    id: alert.entity_id || alert.id,
    kind: "",
    cls: details.cls || "",
    source: details.source,
    lon: alert.lon,
    lat: alert.lat,
    height: alert.height,
    time: alert.last_seen_at || alert.observed_at || alert.created_at,
    attributes: details.masked ? { masked: details.masked } : {},
  };
}
