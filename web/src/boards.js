// The four boards (基础应用, 治安管理, 协同治理, 为民服务) with their apps: alerts today and over
// 7 days, handled ratio and median response time (dispatch → on scene) from GET /api/boards.
// Refreshed after `alert` messages (at most once per `minGapMs`) and once a minute. A role with
// the "admin" permission also gets a switch per app (PUT /api/apps/{id} {enabled}).
import { api, query } from "./api.js";
import { h } from "./dom.js";

const REFRESH_MS = 60000;
const MIN_GAP_MS = 2000;

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

/** Seconds as "42s", "3m05s", "2h10m"; "—" when unknown. */
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Title of a board or app: `{zh, en}` → [zh, en]. */
function titles(title, fallback) {
  if (title && typeof title === "object") return [title.zh || fallback, title.en || ""];
  return [title || fallback, ""];
}

/** The boards table in the left column. */
export class BoardsPanel {
  /**
   * @param {{root: HTMLElement, onData?: (data: any) => void, onBoard?: (id: string) => void, minGapMs?: number}} parts
   *   `root` receives the table; `onData` gets every GET /api/boards answer; `onBoard` a board
   *   row's id when it is clicked.
   */
  constructor({ root, onData = () => {}, onBoard = () => {}, minGapMs = MIN_GAP_MS }) {
    this.root = root;
    this.onData = onData;
    this.onBoard = onBoard;
    this.minGapMs = minGapMs;
    this.data = null;
    this.active = "";
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
        title: enabled ? "停用此应用 Turn the app off" : "启用此应用 Turn the app on",
        onclick: (e) => {
          e.stopPropagation();
          e.currentTarget.disabled = true;
          this.setEnabled(app.id, !enabled).catch(() => this.render());
        },
      },
      enabled ? "停用" : "启用",
    );
  }

  /** Mark the board the alert feed is filtered by ("" for none). */
  setActive(id) {
    this.active = id || "";
    for (const row of this.root.querySelectorAll("tr.board-row")) {
      row.classList.toggle("active", row.dataset.board === this.active);
    }
  }

  /** Board and app figures as table cells: today, 7 days, handled ratio, median response. */
  cells(item) {
    return [
      h("td", { class: "num today", dataset: { fig: "today" } }, String(item.today ?? 0)),
      h("td", { class: "num", dataset: { fig: "week" } }, String(item.week ?? 0)),
      h("td", { class: "num", dataset: { fig: "handled" } }, formatRatio(item.handled_ratio)),
      h(
        "td",
        { class: "num", dataset: { fig: "response" }, title: `${item.responses ?? 0} 次 responses` },
        formatDuration(item.median_response_s),
      ),
    ];
  }

  boardRows(board) {
    const [zh, en] = titles(board.title, board.id);
    const head = h(
      "tr",
      {
        class: `board-row board-${board.id}${board.id === this.active ? " active" : ""}`,
        dataset: { board: board.id },
        title: "按此看板筛选告警 Filter alerts by this board",
        onclick: () => this.onBoard(board.id),
      },
      h("th", { scope: "row" }, h("span", { class: "board-zh" }, zh), " ", h("span", { class: "board-en" }, en)),
      ...this.cells(board),
    );
    const apps = (board.apps || []).map((app) => {
      const [appZh, appEn] = titles(app.title, app.id);
      return h(
        "tr",
        { class: `app-row${app.enabled === false ? " disabled" : ""}`, dataset: { app: app.id, board: board.id }, title: appEn },
        h(
          "th",
          { scope: "row" },
          this.appSwitch(app),
          appZh,
          app.enabled === false ? h("span", { class: "muted" }, " (停用 off)") : null,
        ),
        ...this.cells(app),
      );
    });
    return [head, ...apps];
  }

  render() {
    const boards = (this.data && this.data.boards) || [];
    this.root.replaceChildren(
      h(
        "table",
        { class: "boards-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "看板 / 应用"),
            h("th", { class: "num", title: "今日告警 Alerts today" }, "今日"),
            h("th", { class: "num", title: "近 7 日告警 Alerts in 7 days" }, "7日"),
            h("th", { class: "num", title: "处置率 Handled (resolved or false alarm)" }, "处置率"),
            h("th", { class: "num", title: "响应中位数 Median response (dispatch → on scene)" }, "响应"),
          ),
        ),
        h("tbody", {}, boards.flatMap((board) => this.boardRows(board))),
      ),
    );
  }
}
