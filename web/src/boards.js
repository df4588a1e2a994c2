// The four boards (基础应用, 治安管理, 协同治理, 为民服务) with their apps, and every unit
// alerted: alerts today and over 7 days, handled ratio and median response time (dispatch → on
// scene) from GET /api/boards. Refreshed after `alert` messages (at most once per `minGapMs`)
// and once a minute. A role with the "admin" permission also gets a switch per app
// (PUT /api/apps/{id} {enabled}).
import { APPS } from "./alertdata.js";
import { api, query } from "./api.js";
import { datum, h } from "./dom.js";
import { formatDuration, pick, t } from "./i18n.js";

const REFRESH_MS = 60000;
const MIN_GAP_MS = 2000;
const FIGURES = ["today", "week", "handled", "response"];

/** Time zone whose midnight starts "today" on the wall (the browser's own). */
function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

/** "67%" for 0.6667, "—" when unknown. */
export function formatRatio(ratio) {
  return typeof ratio === "number" && Number.isFinite(ratio) ? `${Math.round(ratio * 100)}%` : "—";
}

/** The boards and units tables in the left column. */
export class BoardsPanel {
  /**
   * @param {{root: HTMLElement, units: HTMLElement, onData?: (data: any) => void,
   *          onBoard?: (id: string) => void, onUnit?: (unit: string) => void, minGapMs?: number}} parts
   *   `root` receives the boards table, `units` the units table; `onData` gets every
   *   GET /api/boards answer; `onBoard` / `onUnit` a clicked row's board id / unit.
   */
  constructor({ root, units, onData = () => {}, onBoard = () => {}, onUnit = () => {}, minGapMs = MIN_GAP_MS }) {
    Object.assign(this, { root, unitsRoot: units, onData, onBoard, onUnit, minGapMs });
    this.data = null;
    this.active = "";
    this.activeUnit = "";
    this.loads = 0;
    this.lastLoad = 0;
    this.pending = 0;
    this.inFlight = null;
    this.tz = localZone();
    this.mayConfigure = false;
    this.timer = setInterval(() => this.refresh().catch(() => {}), REFRESH_MS);
  }

  /** Fetch GET /api/boards now and draw it. */
  async refresh() {
    if (this.inFlight) return this.inFlight;
    this.lastLoad = Date.now();
    this.inFlight = api(`/api/boards${query({ tz: this.tz })}`)
      .catch((err) => {
        // An unknown browser zone falls back to the server's default ("today" in Asia/Shanghai).
        if (this.tz && err.status === 422) {
          this.tz = "";
          return api("/api/boards");
        }
        throw err;
      })
      .then((data) => {
        this.data = data;
        this.loads += 1;
        for (const board of data.boards || []) {
          for (const app of board.apps || []) APPS.set(app.id, { title: app.title, board: board.id });
        }
        this.render();
        this.onData(data);
        return data;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  /** Refresh after an alert changed: at once if the last load is old enough, else once later. */
  refreshSoon() {
    if (this.pending) return;
    const wait = Math.max(0, this.lastLoad + this.minGapMs - Date.now());
    this.pending = setTimeout(() => {
      this.pending = 0;
      this.refresh().catch(() => {});
    }, wait);
  }

  /** Offer the apps' on/off switches (the caller's role may configure apps) or not. */
  setMayConfigure(mayConfigure) {
    this.mayConfigure = mayConfigure;
    this.render();
  }

  /** Turn an app on or off, then redraw the figures (its rules restart on the server). */
  async setEnabled(appId, enabled) {
    await api(`/api/apps/${encodeURIComponent(appId)}`, { method: "PUT", body: { enabled } });
    return this.refresh();
  }

  /** The on/off switch of an app row (admins only), before its name so it is never clipped. */
  appSwitch(app) {
    if (!this.mayConfigure) return null;
    const enabled = app.enabled !== false;
    return h(
      "button",
      {
        type: "button",
        class: "small app-toggle",
        dataset: { app: app.id, enabled: String(enabled) },
        title: t(enabled ? "boards.turnOff" : "boards.turnOn"),
        onclick: (e) => {
          e.stopPropagation();
          e.currentTarget.disabled = true;
          this.setEnabled(app.id, !enabled).catch(() => this.render());
        },
      },
      t(enabled ? "boards.off" : "boards.on"),
    );
  }

  /** Mark the board and unit the alert feed is filtered by ("" for none). */
  setActive(board, unit = "") {
    this.active = board || "";
    this.activeUnit = unit || "";
    for (const row of this.root.querySelectorAll("tr.board-row")) row.classList.toggle("active", row.dataset.board === this.active);
    for (const row of this.unitsRoot.querySelectorAll("tr.unit-row")) row.classList.toggle("active", row.dataset.unit === this.activeUnit);
  }

  /** Figures as table cells: today, 7 days, handled ratio, median response. */
  cells(item) {
    const text = {
      today: String(item.today ?? 0),
      week: String(item.week ?? 0),
      handled: formatRatio(item.handled_ratio),
      response: formatDuration(item.median_response_s),
    };
    return FIGURES.map((fig) =>
      h("td", { class: `num ${fig}`, dataset: { fig }, title: fig === "response" ? t("boards.responses", { n: item.responses ?? 0 }) : undefined }, text[fig]),
    );
  }

  head(first) {
    return h(
      "thead",
      {},
      h("tr", {}, h("th", {}, first), ...FIGURES.map((fig) => h("th", { class: "num", title: t(`boards.${fig}Title`) }, t(`boards.${fig}`)))),
    );
  }

  boardRows(board) {
    const head = h(
      "tr",
      {
        class: `board-row board-${board.id}${board.id === this.active ? " active" : ""}`,
        dataset: { board: board.id },
        title: t("boards.filter"),
        onclick: () => this.onBoard(board.id),
      },
      h("th", { scope: "row", translate: "no" }, pick(board.title, board.id)),
      ...this.cells(board),
    );
    const apps = (board.apps || []).map((app) =>
      h(
        "tr",
        { class: `app-row${app.enabled === false ? " disabled" : ""}`, dataset: { app: app.id, board: board.id } },
        h("th", { scope: "row" }, this.appSwitch(app), datum(pick(app.title, app.id)),
          app.enabled === false ? h("span", { class: "muted" }, ` (${t("boards.isOff")})`) : null),
        ...this.cells(app),
      ),
    );
    return [head, ...apps];
  }

  unitRow(item) {
    return h(
      "tr",
      {
        class: `unit-row${item.unit === this.activeUnit ? " active" : ""}`,
        dataset: { unit: item.unit },
        title: t("boards.filterUnit"),
        onclick: () => this.onUnit(item.unit),
      },
      h("th", { scope: "row", translate: "no" }, item.unit),
      ...this.cells(item),
    );
  }

  render() {
    const boards = (this.data && this.data.boards) || [];
    const units = (this.data && this.data.units) || [];
    this.root.replaceChildren(
      h("table", { class: "boards-table" }, this.head(t("boards.boardApp")), h("tbody", {}, boards.flatMap((b) => this.boardRows(b)))),
    );
    this.unitsRoot.replaceChildren(
      h("h3", { class: "units-title" }, t("boards.units")),
      units.length
        ? h("table", { class: "boards-table units-table" }, this.head(t("boards.unit")), h("tbody", {}, units.map((u) => this.unitRow(u))))
        : h("p", { class: "muted" }, t("boards.noUnits")),
    );
  }
}
