// Layer switches over the map: buildings, terrain, roads, water, jurisdictions, cameras (markers
// and frustums), camera footprints, live people, vehicles, sensors and alerts. Each switch is a
// toggle button (aria-pressed); the choice is remembered (localStorage) and applied through the
// handler the page gives for that layer.
import { h } from "./dom.js";
import { onLang, t } from "./i18n.js";

export const LAYERS = [
  "buildings",
  "terrain",
  "roads",
  "water",
  "jurisdictions",
  "cameras",
  "footprints",
  "people",
  "vehicles",
  "sensors",
  "alerts",
];
const STORAGE_KEY = "twin.layers";
// Off until switched on: the terrain's orthophoto already shows the roads and the water.
const OFF_BY_DEFAULT = new Set(["roads", "water"]);

export class LayerSwitcher {
  /**
   * @param {HTMLElement} root the container over the map
   * @param {Record<string, (on: boolean) => void>} handlers one per layer of LAYERS
   */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.state = Object.fromEntries(LAYERS.map((layer) => [layer, !OFF_BY_DEFAULT.has(layer)]));
    try {
      Object.assign(this.state, JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}"));
    } catch {
      // A damaged choice falls back to the defaults.
    }
    this.toggle = h("button", {
      type: "button",
      class: "layers-toggle",
      id: "layers-toggle",
      "aria-expanded": "false",
      onclick: () => this.expand(this.root.dataset.open !== "1"),
    });
    this.list = h("div", { class: "layers-list", id: "layers-list" });
    root.append(this.toggle, this.list);
    this.render();
    onLang(() => this.render());
  }

  /** Show or fold the list of switches. */
  expand(open) {
    this.root.dataset.open = open ? "1" : "0";
    this.toggle.setAttribute("aria-expanded", String(open));
  }

  render() {
    this.toggle.textContent = t("layers.title");
    this.list.replaceChildren(
      ...LAYERS.map((layer) =>
        h(
          "button",
          {
            type: "button",
            class: `layer-switch layer-${layer}`,
            dataset: { layer },
            "aria-pressed": String(this.state[layer]),
            onclick: () => this.set(layer, !this.state[layer]),
          },
          h("span", { class: "layer-dot" }),
          t(`layers.${layer}`),
        ),
      ),
    );
  }

  /** Switch `layer` on or off (remembered). */
  set(layer, on) {
    this.state[layer] = on;
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.state));
    const button = this.list.querySelector(`[data-layer="${layer}"]`);
    if (button) button.setAttribute("aria-pressed", String(on));
    this.handlers[layer](on);
  }

  /** Apply every layer's current state (once the layers exist). */
  applyAll() {
    for (const layer of LAYERS) this.handlers[layer](this.state[layer]);
  }
}
