// The side panel: everything about one element (GET /api/elements/{id}) or one live entity.
import { formatMetres, formatTime, h } from "./dom.js";

const KIND_NAMES = {
  building: "建筑 Building",
  site: "场所 Site",
  road: "道路 Road",
  water: "水体 Water",
  jurisdiction: "辖区 Jurisdiction",
  camera: "摄像头 Camera",
  sensor: "传感器 Sensor",
};

function section(title, ...content) {
  return h("section", { class: "panel-section" }, h("h3", {}, title), ...content);
}

function table(rows) {
  const body = rows
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) =>
      h("tr", {}, h("th", {}, key), h("td", {}, typeof value === "object" ? JSON.stringify(value) : value)),
    );
  return body.length ? h("table", { class: "kv" }, h("tbody", {}, body)) : h("p", { class: "muted" }, "—");
}

function list(items, render, empty) {
  if (!items || !items.length) return h("p", { class: "muted" }, empty);
  return h("ul", { class: "plain-list" }, items.map((item) => h("li", {}, render(item))));
}

function jurisdictionText(record) {
  const j = record.jurisdiction;
  const unit = (j && j.unit) || record.unit;
  if (j && j.name) return unit ? `${j.name} · ${unit}` : j.name;
  return unit || "—";
}

function siteText(site) {
  if (!site) return undefined;
  if (typeof site === "string") return site;
  return site.name || site.id;
}

/** The side panel element and what it shows. */
export class Panel {
  /**
   * @param {HTMLElement} root the <aside id="panel">
   * @param {{onSelect: (id: string) => void, onFly: (lon: number, lat: number, h: number) => void, onClose: () => void}} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.body = root.querySelector("#panel-body");
    this.actions = actions;
    root.querySelector("#panel-close").addEventListener("click", () => {
      this.hide();
      actions.onClose();
    });
  }

  open() {
    this.root.hidden = false;
    document.body.classList.add("panel-open");
  }

  hide() {
    this.root.hidden = true;
    document.body.classList.remove("panel-open");
    delete this.root.dataset.elementId;
    delete this.root.dataset.entityId;
    this.body.replaceChildren();
  }

  loading(id) {
    this.open();
    this.root.dataset.loading = "1";
    this.body.replaceChildren(h("p", { class: "muted" }, `加载中 Loading ${id}…`));
  }

  error(message) {
    this.open();
    delete this.root.dataset.loading;
    delete this.root.dataset.elementId;
    this.body.replaceChildren(h("p", { class: "error" }, message));
  }

  /** Show an element record from GET /api/elements/{id}. */
  showElement(record) {
    const { actions } = this;
    const link = (id, text) =>
      h("a", { href: "#", class: "link", onclick: (e) => (e.preventDefault(), actions.onSelect(id)) }, text || id);
    const attributes = Object.entries(record.attributes || {}).filter(
      ([, v]) => v !== null && v !== undefined && v !== "",
    );
    const top = (record.base_height ?? 0) + (record.height ?? 0);
    this.open();
    delete this.root.dataset.loading;
    delete this.root.dataset.entityId;
    this.root.dataset.elementId = record.id;
    this.body.replaceChildren(
      h("div", { class: "panel-kind" }, KIND_NAMES[record.kind] || record.kind),
      h("h2", { class: "panel-title", id: "panel-name" }, record.name || record.id),
      h("div", { class: "panel-id mono", id: "panel-id" }, record.id),
      h(
        "div",
        { class: "panel-actions" },
        h("button", { type: "button", onclick: () => actions.onFly(record.lon, record.lat, top) }, "定位 Fly to"),
      ),
      section(
        "概况 Summary",
        table([
          ["高度 Height", formatMetres(record.height)],
          ["地面 Ground (ellipsoidal)", formatMetres(record.base_height)],
          ["辖区 Jurisdiction", jurisdictionText(record)],
          ["场所 Site", siteText(record.site)],
          ["位置 Position", `${Number(record.lon).toFixed(6)}, ${Number(record.lat).toFixed(6)}`],
        ]),
      ),
      section("属性 Attributes", table(attributes)),
      section(
        "可见摄像头 Cameras that see it",
        list(record.cameras, (cam) => [
          link(cam.id, cam.name || cam.id),
          typeof cam.u === "number" ? h("span", { class: "muted mono" }, ` px ${Math.round(cam.u)}, ${Math.round(cam.v)}`) : null,
        ], "无 None"),
      ),
      section(
        "最近事件 Recent events",
        list(record.recent_events, (ev) => [
          h("span", { class: "mono muted" }, formatTime(ev.time || ev.created_at)),
          " ",
          ev.title || [ev.kind, ev.cls].filter(Boolean).join(" · ") || ev.id,
          ev.status ? h("span", { class: `badge status-${ev.status}` }, ev.status) : null,
        ], "无 None"),
      ),
      section(
        "附近实时目标 Live nearby",
        list(record.nearby, (ent) => [
          h("span", { class: `kind-dot kind-${ent.kind}` }),
          ` ${ent.cls || ent.kind || ""} `,
          h("span", { class: "mono muted" }, ent.id),
          typeof ent.distance_m === "number" ? h("span", { class: "muted" }, ` ${ent.distance_m.toFixed(0)} m`) : null,
        ], "无 None"),
      ),
    );
  }

  /** Show a live entity's latest payload. */
  showEntity(payload) {
    this.open();
    delete this.root.dataset.loading;
    delete this.root.dataset.elementId;
    this.root.dataset.entityId = payload.id;
    this.body.replaceChildren(
      h("div", { class: "panel-kind" }, `实时目标 Live ${payload.kind || ""}`),
      h("h2", { class: "panel-title" }, payload.cls || payload.kind || payload.id),
      h("div", { class: "panel-id mono" }, payload.id),
      section(
        "概况 Summary",
        table([
          ["来源 Source", payload.source],
          ["轨迹 Track", payload.track_id],
          ["置信度 Confidence", typeof payload.confidence === "number" ? payload.confidence.toFixed(2) : undefined],
          ["时间 Time", formatTime(payload.time)],
          ["位置 Position", `${Number(payload.lon).toFixed(6)}, ${Number(payload.lat).toFixed(6)}`],
          ["高度 Height", formatMetres(payload.height)],
        ]),
      ),
      section("属性 Attributes", table(Object.entries(payload.attributes || {}))),
    );
  }

  /** Show what is at a clicked ground position when no element was there. */
  showNothing(lon, lat) {
    this.open();
    delete this.root.dataset.loading;
    delete this.root.dataset.elementId;
    this.body.replaceChildren(
      h("div", { class: "panel-kind" }, "位置 Location"),
      h("h2", { class: "panel-title" }, "无要素 No element here"),
      h("div", { class: "panel-id mono" }, `${lon.toFixed(6)}, ${lat.toFixed(6)}`),
    );
  }
}
