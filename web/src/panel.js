// The side panel: everything about one element (GET /api/elements/{id}, a curated record with
// the raw attributes folded away), one alert (alertview.js) or one live entity. Data (names,
// units, ids, attribute values) is shown untranslated; labels come from the catalog.
import { datum, h } from "./dom.js";
import { formatMetres, formatTime, known, lang, t } from "./i18n.js";

/** A titled section of the panel. */
export function section(title, ...content) {
  return h("section", { class: "panel-section" }, h("h3", {}, title), ...content);
}

/** A key/value table; rows with no value are left out; values may be nodes. */
export function table(rows, { data = false } = {}) {
  const body = rows
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) =>
      h(
        "tr",
        {},
        h("th", data ? { translate: "no" } : {}, key),
        h("td", {}, value instanceof Node ? value : datum(typeof value === "object" ? JSON.stringify(value) : String(value))),
      ),
    );
  return body.length ? h("table", { class: "kv" }, h("tbody", {}, body)) : h("p", { class: "muted" }, "—");
}

/** A list of items drawn by `render`, or `empty`. */
export function list(items, render, empty = t("common.none")) {
  if (!items || !items.length) return h("p", { class: "muted" }, empty);
  return h("ul", { class: "plain-list" }, items.map((item) => h("li", {}, render(item))));
}

function jurisdictionNode(record) {
  const j = record.jurisdiction;
  const unit = (j && j.unit) || record.unit;
  if (j && j.name) return h("span", {}, datum(j.name), unit ? " · " : "", unit ? datum(unit, "strong") : null);
  return unit ? datum(unit, "strong") : null;
}

/** Height with where it came from: "152.0 m (nDSM)". */
function heightNode(record) {
  const source = (record.attributes || {}).height_source;
  if (record.kind !== "building") return formatMetres(record.height);
  return h(
    "span",
    {},
    formatMetres(record.height),
    source ? h("span", { class: "muted" }, ` (${t(`heightSource.${source}`)})`) : null,
  );
}

/** The name in the page's language when the data has one (OSM `name:en`, `name:zh`). */
function localName(record) {
  const attributes = record.attributes || {};
  const other = attributes[lang() === "en" ? "name:en" : "name:zh"];
  return other && other !== record.name ? other : null;
}

/** Kind-specific facts of a record: camera kind and mount, sensor kind and limit, levels. */
function kindRows(record) {
  const a = record.attributes || {};
  if (record.kind === "camera") {
    return [
      [t("panel.cameraKind"), known(`cameraKind.${a.camera_kind}`) ? t(`cameraKind.${a.camera_kind}`) : a.camera_kind],
      [t("panel.mount"), formatMetres(record.height)],
    ];
  }
  if (record.kind === "sensor") {
    const limit = a.limit !== undefined ? `${a.limit}${a.unit_of_measure ? ` ${a.unit_of_measure}` : ""}` : undefined;
    return [[t("panel.sensorKind"), a.sensor_kind], [t("panel.limit"), limit]];
  }
  return record.kind === "building" ? [[t("panel.levels"), a.levels]] : [];
}

/** The side panel element and what it shows. */
export class Panel {
  /**
   * @param {HTMLElement} root the <aside id="panel">
   * @param {{onSelect: (id: string) => void, onFly: (lon: number, lat: number, h: number) => void,
   *          onClose: () => void, onAlert: (id: string) => void}} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.body = root.querySelector("#panel-body");
    this.actions = actions;
    this.shown = null; // what is shown: {type, value, extra}, redrawn on a language switch
    root.querySelector("#panel-close").addEventListener("click", () => {
      this.hide();
      actions.onClose();
    });
  }

  open() {
    this.root.hidden = false;
    document.body.classList.add("panel-open");
    window.dispatchEvent(new Event("twin:layout"));
  }

  hide() {
    this.root.hidden = true;
    document.body.classList.remove("panel-open");
    for (const key of ["elementId", "entityId", "alertId", "loading"]) delete this.root.dataset[key];
    this.body.replaceChildren();
    this.shown = null;
    window.dispatchEvent(new Event("twin:layout"));
  }

  /** Show `content` (nodes) with the panel marked by `marks` (data attributes). */
  fill(marks, content, shown) {
    this.open();
    for (const key of ["elementId", "entityId", "alertId", "loading"]) delete this.root.dataset[key];
    Object.assign(this.root.dataset, marks);
    this.body.replaceChildren(...content);
    this.shown = shown;
  }

  loading(id) {
    this.fill({ loading: "1" }, [h("p", { class: "muted" }, t("panel.loading"), " ", datum(id))], null);
  }

  error(message) {
    this.fill({}, [h("p", { class: "error" }, message)], null);
  }

  /** Redraw what is shown (after a language switch). */
  redraw() {
    if (!this.shown) return;
    const { type, value, extra } = this.shown;
    if (type === "element") this.showElement(value, extra);
    else if (type === "entity") this.showEntity(value);
    else if (type === "custom") this.fill(this.shown.marks, extra(), this.shown);
  }

  /** Show arbitrary content built by `build()` (called again on a language switch). */
  showCustom(marks, build) {
    const shown = { type: "custom", marks, extra: build };
    this.fill(marks, build(), shown);
  }

  link(id, text) {
    return h(
      "a",
      { href: "#", class: "link", translate: "no", onclick: (e) => (e.preventDefault(), this.actions.onSelect(id)) },
      text || id,
    );
  }

  /**
   * Show an element record from GET /api/elements/{id}; `extra()` adds sections (a camera's
   * live pose and controls) right after the summary.
   */
  showElement(record, extra = () => []) {
    const top = (record.base_height ?? 0) + (record.height ?? 0);
    const attributes = Object.entries(record.attributes || {}).filter(([, v]) => v !== null && v !== undefined && v !== "");
    const other = localName(record);
    this.fill({ elementId: record.id }, [
      h("div", { class: "panel-kind" }, known(`kind.${record.kind}`) ? t(`kind.${record.kind}`) : record.kind),
      h("h2", { class: "panel-title", id: "panel-name", translate: "no" }, record.name || record.id),
      other ? h("div", { class: "panel-subtitle", translate: "no" }, other) : null,
      h("div", { class: "panel-id mono", id: "panel-id", translate: "no" }, record.id),
      h(
        "div",
        { class: "panel-actions" },
        h("button", { type: "button", onclick: () => this.actions.onFly(record.lon, record.lat, top) }, t("panel.flyTo")),
      ),
      section(
        t("panel.summary"),
        table([
          [t("panel.height"), heightNode(record)],
          ...kindRows(record),
          [t("panel.ground"), formatMetres(record.base_height)],
          [t("panel.jurisdiction"), jurisdictionNode(record)],
          [t("panel.site"), record.site ? datum(typeof record.site === "string" ? record.site : record.site.name || record.site.id) : null],
          [t("panel.position"), `${Number(record.lon).toFixed(6)}, ${Number(record.lat).toFixed(6)}`],
        ]),
      ),
      ...extra(),
      section(
        t("panel.cameras"),
        list(record.cameras, (cam) => [
          this.link(cam.id, cam.name || cam.id),
          typeof cam.u === "number" ? h("span", { class: "muted mono" }, ` px ${Math.round(cam.u)}, ${Math.round(cam.v)}`) : null,
        ]),
      ),
      section(
        t("panel.recent"),
        list(record.recent_events, (ev) => [
          h("span", { class: "mono muted" }, formatTime(ev.time || ev.created_at)),
          " ",
          ev.type === "alert"
            ? h("a", { href: "#", class: "link", translate: "no", onclick: (e) => (e.preventDefault(), this.actions.onAlert(ev.id)) }, ev.title)
            : datum([ev.kind, ev.cls].filter(Boolean).join(" · ") || ev.id),
          ev.status ? h("span", { class: `badge status-${ev.status}` }, t(`status.${ev.status}`)) : null,
        ]),
      ),
      section(
        t("panel.nearby"),
        list(record.nearby, (ent) => [
          h("span", { class: `kind-dot kind-${ent.kind}` }),
          " ",
          datum(ent.cls || ent.kind || ""),
          " ",
          h("span", { class: "mono muted", translate: "no" }, ent.id),
          typeof ent.distance_m === "number" ? h("span", { class: "muted" }, ` ${ent.distance_m.toFixed(0)} m`) : null,
        ]),
      ),
      h(
        "details",
        { class: "panel-raw" },
        h("summary", {}, t("panel.raw", { n: attributes.length })),
        table(attributes, { data: true }),
      ),
    ].filter(Boolean), { type: "element", value: record, extra });
  }

  /** Show a live entity's latest payload. */
  showEntity(payload) {
    const attributes = Object.entries(payload.attributes || {});
    this.fill({ entityId: payload.id }, [
      h("div", { class: "panel-kind" }, t("panel.liveEntity"), " ", known(`kind.${payload.kind}`) ? t(`kind.${payload.kind}`) : ""),
      h("h2", { class: "panel-title", translate: "no" }, payload.cls || payload.kind || payload.id),
      h("div", { class: "panel-id mono", translate: "no" }, payload.id),
      section(
        t("panel.summary"),
        table([
          [t("panel.source"), payload.source],
          [t("panel.track"), payload.track_id],
          [t("panel.confidence"), typeof payload.confidence === "number" ? payload.confidence.toFixed(2) : undefined],
          [t("panel.time"), formatTime(payload.time)],
          [t("panel.position"), `${Number(payload.lon).toFixed(6)}, ${Number(payload.lat).toFixed(6)}`],
          [t("panel.height"), formatMetres(payload.height)],
        ]),
      ),
      h("details", { class: "panel-raw", open: true }, h("summary", {}, t("panel.raw", { n: attributes.length })), table(attributes, { data: true })),
    ], { type: "entity", value: payload });
  }

  /** Show what is at a clicked ground position when no element was there. */
  showNothing(lon, lat) {
    this.showCustom({}, () => [
      h("div", { class: "panel-kind" }, t("panel.location")),
      h("h2", { class: "panel-title" }, t("panel.noElement")),
      h("div", { class: "panel-id mono" }, `${lon.toFixed(6)}, ${lat.toFixed(6)}`),
    ]);
  }
}
