// Alerts on the map: one symbol per open alert (those the feed's filter shows) at its place,
// coloured by severity, pulsing while new, with the incident's count. Symbols are HTML buttons
// over the canvas, moved after each frame the globe draws, so the pulse is a CSS animation and
// costs the globe no frames (it draws only on change). A click opens the alert.
import { titleOf } from "./alertdata.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const Cesium = window.Cesium;

export class AlertSymbols {
  /**
   * @param {any} viewer the Cesium viewer
   * @param {HTMLElement} root the overlay over the map canvas
   * @param {(id: string) => void} onOpen a symbol was clicked
   */
  constructor(viewer, root, onOpen) {
    this.viewer = viewer;
    this.root = root;
    this.onOpen = onOpen;
    this.symbols = new Map(); // alert id -> {el, position, key}
    this.selectedId = null;
    this.visible = true;
    this.scratch = new Cesium.Cartesian2();
    viewer.scene.postRender.addEventListener(() => this.place());
  }

  /** Show these alerts (and no others). */
  set(alerts) {
    const keep = new Set();
    for (const alert of alerts) {
      keep.add(alert.id);
      const key = `${alert.status}|${alert.severity}|${alert.count || 1}|${titleOf(alert)}`;
      let symbol = this.symbols.get(alert.id);
      if (!symbol) {
        const el = h("button", { type: "button", class: "alert-symbol", dataset: { alertId: alert.id },
                                 onclick: () => this.onOpen(alert.id) });
        this.root.append(el);
        symbol = { el, key: "" };
        this.symbols.set(alert.id, symbol);
      }
      symbol.position = Cesium.Cartesian3.fromDegrees(alert.lon, alert.lat, (alert.height || 0) + 2);
      if (symbol.key !== key) {
        symbol.key = key;
        const count = alert.count || 1;
        symbol.el.className = `alert-symbol sev-${alert.severity || "warning"} status-${alert.status}`;
        symbol.el.classList.toggle("selected", alert.id === this.selectedId);
        symbol.el.dataset.status = alert.status;
        symbol.el.title = `${titleOf(alert)} · ${t(`status.${alert.status}`)}`;
        symbol.el.setAttribute("aria-label", symbol.el.title);
        symbol.el.replaceChildren(h("span", { class: "alert-symbol-mark" }, "!"), count > 1 ? h("span", { class: "alert-symbol-count" }, String(count)) : "");
      }
    }
    for (const [id, symbol] of this.symbols) {
      if (!keep.has(id)) {
        symbol.el.remove();
        this.symbols.delete(id);
      }
    }
    this.place();
  }

  /** Mark the alert opened last. */
  select(id) {
    this.selectedId = id;
    for (const [key, symbol] of this.symbols) symbol.el.classList.toggle("selected", key === id);
  }

  /** Show or hide every symbol (the "alerts" layer switch). */
  setVisible(on) {
    this.visible = on;
    this.root.hidden = !on;
    this.place();
  }

  /** Move each symbol to where its place is drawn now (hidden behind the globe or off screen). */
  place() {
    if (!this.visible) return;
    const scene = this.viewer.scene;
    const canvas = scene.canvas;
    const occluder = new Cesium.EllipsoidalOccluder(Cesium.Ellipsoid.WGS84, scene.camera.positionWC);
    for (const symbol of this.symbols.values()) {
      const where = Cesium.SceneTransforms.worldToWindowCoordinates(scene, symbol.position, this.scratch);
      const inside = where && occluder.isPointVisible(symbol.position) &&
        where.x >= 0 && where.y >= 0 && where.x <= canvas.clientWidth && where.y <= canvas.clientHeight;
      symbol.el.hidden = !inside;
      if (inside) symbol.el.style.transform = `translate(${where.x.toFixed(1)}px, ${where.y.toFixed(1)}px)`;
    }
  }

  /** How many symbols are on the map now. */
  get count() {
    let n = 0;
    for (const symbol of this.symbols.values()) if (!symbol.el.hidden && this.visible) n += 1;
    return n;
  }
}
