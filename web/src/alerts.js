// The alert feed: open alerts (new, acknowledged, dispatched, on scene) from GET /api/alerts, kept
// current by `alert` messages; evidence, the unit it is routed to, life-cycle actions
// (POST /api/alerts/{id}/ack|dispatch|arrive|resolve|false-alarm; their buttons only for a role
// with the "alerts" permission, see access.js) and filters by board and unit. Closed alerts
// (resolved, false alarm) leave the feed.
import { api, ApiError, apiObjectUrl, query } from "./api.js";
import { formatTime, h } from "./dom.js";

export const STATUS_NAMES = {
  new: "新 New",
  acknowledged: "已确认 Acked",
  dispatched: "已派警 Dispatched",
  on_scene: "已到场 On scene",
  resolved: "已处置 Resolved",
  false_alarm: "误报 False alarm",
};

/** Statuses of an alert that is still open (shown in the feed). */
export const OPEN_STATUSES = ["new", "acknowledged", "dispatched", "on_scene"];

/** Life-cycle actions: API path segment → button label and the status it leads to. */
const ACTIONS = {
  ack: { label: "确认 Ack", status: "acknowledged" },
  dispatch: { label: "派警 Dispatch", status: "dispatched" },
  arrive: { label: "到场 Arrive", status: "on_scene" },
  resolve: { label: "处置 Resolve", status: "resolved" },
  "false-alarm": { label: "误报 False", status: "false_alarm" },
};

/** The actions offered in each open status (the server also allows skipping forward). */
const ACTIONS_BY_STATUS = {
  new: ["ack", "dispatch", "false-alarm"],
  acknowledged: ["dispatch", "resolve", "false-alarm"],
  dispatched: ["arrive", "resolve", "false-alarm"],
  on_scene: ["resolve", "false-alarm"],
};

const BOARD_NAMES = {
  basic: "基础应用",
  "public-order": "治安管理",
  "joint-governance": "协同治理",
  "public-service": "为民服务",
};

const WATCHLIST_LABELS = { "suspended-licences": "车牌 Plate", "wanted-persons": "身份 ID" };
const LOAD_LIMIT = 500;
const MAX_ROWS = 200;

/** Short text of a reading: "92 ug/m3 > 75". */
function readingText(d) {
  const unit = d.unit_of_measure ? ` ${d.unit_of_measure}` : "";
  const sign = d.direction === "below" ? "<" : ">";
  return `${d.attribute || "读数"} ${d.reading}${unit} ${sign} ${d.limit}`;
}

/** Ids of the observations behind an alert. */
function observationIds(alert) {
  return (alert.evidence && alert.evidence.observation_ids) || alert.observation_ids || [];
}

/**
 * One line of what backs an alert: the identifier (masked), the rule's figures, the observed
 * class and how many observations, e.g. "车牌 Plate 沪A·***45 · car · 1 obs".
 */
/** The frame crop of the observed box (evidence.crop), loaded with the token; null if none. */
function evidenceCrop(alert) {
  const url = alert.evidence && alert.evidence.crop;
  if (!url) return null;
  const img = h("img", { class: "alert-crop", alt: "现场截图 Frame crop" });
  img.hidden = true;
  apiObjectUrl(url)
    .then((src) => {
      if (!src) return;
      img.src = src;
      img.hidden = false;
    })
    .catch(() => {});
  return img;
}

export function evidenceSummary(alert) {
  const evidence = alert.evidence || {};
  const d = evidence.details || {};
  const parts = [];
  if (d.masked) parts.push(`${WATCHLIST_LABELS[d.watchlist] || "名单 Listed"} ${d.masked}`);
  if (d.reason) parts.push(String(d.reason));
  if (typeof d.count === "number") parts.push(`${d.count} 人/辆 tracks`);
  if (typeof d.dwell_s === "number") parts.push(`停留 ${Math.round(d.dwell_s)} s`);
  if (d.reading !== undefined && d.limit !== undefined) parts.push(readingText(d));
  if (d.cls && d.cls !== d.attribute) parts.push(d.cls);
  const ids = observationIds(alert);
  if (ids.length) parts.push(`${ids.length} 条观测 obs`);
  return parts.join(" · ");
}

/** Whether an alert passes the feed's filter `{board, unit}` ("" = any). */
export function passes(alert, { board = "", unit = "" } = {}) {
  return (!board || alert.board === board) && (!unit || alert.unit === unit);
}

/** The alert list in the left column. */
export class AlertList {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, error: HTMLElement,
   *          boardSelect: HTMLSelectElement, unitSelect: HTMLSelectElement,
   *          onFly: (alert: any) => void, onCamera: (id: string, alert: any) => void,
   *          onCount: (open: number, shown: number) => void,
   *          onFilter?: (filter: {board: string, unit: string}) => void}} parts
   *   `onFly` runs when an alert is clicked (fly to its place, open its panel); `onCamera` when
   *   the link of a camera that sees the place is clicked.
   */
  constructor({ list, empty, error, boardSelect, unitSelect, onFly, onCamera, onCount, onFilter = () => {} }) {
    this.list = list;
    this.empty = empty;
    this.errorBox = error;
    this.boardSelect = boardSelect;
    this.unitSelect = unitSelect;
    this.onFly = onFly;
    this.onCamera = onCamera;
    this.onCount = onCount;
    this.onFilter = onFilter;
    this.alerts = new Map();
    // Alerts that arrive while a load() is in flight, one map per load: its answer may predate
    // them, so they are applied again on top of it.
    this.arriving = new Set();
    this.rows = new Map();
    this.closed = new Set();
    this.filter = { board: "", unit: "" };
    this.boards = [];
    this.units = new Set();
    this.selectedId = null;
    this.errorTimer = 0;
    this.mayAct = false;
    boardSelect.addEventListener("change", () => this.setFilter({ board: boardSelect.value }));
    unitSelect.addEventListener("change", () => this.setFilter({ unit: unitSelect.value }));
  }

  /** Load the open alerts (every status in OPEN_STATUSES; with the filter, those it passes). */
  async load() {
    const filtered = Boolean(this.filter.board || this.filter.unit);
    const requests = OPEN_STATUSES.flatMap((status) => [
      api(`/api/alerts${query({ status, limit: LOAD_LIMIT })}`),
      filtered ? api(`/api/alerts${query({ status, limit: LOAD_LIMIT, ...this.filter })}`) : null,
    ]);
    const arrived = new Map();
    this.arriving.add(arrived);
    let pages;
    try {
      pages = await Promise.all(requests.filter(Boolean));
    } finally {
      this.arriving.delete(arrived);
    }
    this.alerts.clear();
    for (const alert of pages.flatMap((page) => page.items || [])) this.alerts.set(alert.id, alert);
    for (const alert of arrived.values()) this.apply(alert);
    this.render();
  }

  /** Insert or update one alert (from a message or an action's answer). */
  upsert(alert) {
    if (!alert || !alert.id) return;
    for (const arrived of this.arriving) arrived.set(alert.id, alert);
    this.apply(alert);
    this.render();
  }

  /** Take one alert into the open set (or close it), never stepping a status back. */
  apply(alert) {
    if (this.closed.has(alert.id)) return;
    const known = this.alerts.get(alert.id);
    const rank = (status) => OPEN_STATUSES.indexOf(status);
    // A message may arrive after an action's answer: never step a status back.
    if (known && rank(alert.status) !== -1 && rank(alert.status) < rank(known.status)) return;
    if (OPEN_STATUSES.includes(alert.status)) {
      this.alerts.set(alert.id, { ...known, ...alert });
    } else {
      this.alerts.delete(alert.id);
      this.closed.add(alert.id);
    }
  }

  /** Open alerts, newest first (all of them, ignoring the filter). */
  get open() {
    return [...this.alerts.values()]
      .filter((a) => OPEN_STATUSES.includes(a.status))
      .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  }

  /** Change the filter (`{board}` and/or `{unit}`), reflect it in the dropdowns and redraw. */
  setFilter(change) {
    this.filter = { ...this.filter, ...change };
    this.syncSelects();
    this.onFilter(this.filter);
    this.render();
    this.load().catch((err) => this.showError(`告警加载失败 Alerts: ${err.message}`));
  }

  /** Options of the filters: boards from GET /api/boards, units from its figures and alerts. */
  setBoards(data) {
    this.boards = (data && data.boards) || [];
    for (const item of (data && data.units) || []) if (item.unit) this.units.add(item.unit);
    this.syncSelects();
  }

  /** Units known from the catalog (jurisdictions), for the unit filter. */
  addUnits(units) {
    for (const unit of units) if (unit) this.units.add(unit);
    this.syncSelects();
  }

  syncSelects() {
    const boardOptions = this.boards.length
      ? this.boards.map((b) => [b.id, `${b.title && b.title.zh ? b.title.zh : b.id} ${b.title && b.title.en ? b.title.en : ""}`])
      : Object.entries(BOARD_NAMES);
    this.fill(this.boardSelect, "全部看板 All boards", boardOptions, this.filter.board);
    for (const alert of this.alerts.values()) if (alert.unit) this.units.add(alert.unit);
    if (this.filter.unit) this.units.add(this.filter.unit);
    const units = [...this.units].sort().map((unit) => [unit, unit]);
    this.fill(this.unitSelect, "全部单位 All units", units, this.filter.unit);
  }

  fill(select, allLabel, options, value) {
    const key = JSON.stringify(options);
    if (select.dataset.options !== key) {
      select.dataset.options = key;
      select.replaceChildren(
        h("option", { value: "" }, allLabel),
        ...options.map(([id, label]) => h("option", { value: id }, label)),
      );
    }
    select.value = value;
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => (this.errorBox.hidden = true), 10000);
  }

  /** POST one life-cycle action; a 403 (the token changed since the page asked GET /api/me)
   * says the role may not act, a 409 that the alert moved on. */
  async act(alert, action, row) {
    for (const button of row.querySelectorAll("button")) button.disabled = true;
    try {
      const updated = await api(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, {
        method: "POST",
      });
      this.upsert(updated && updated.id ? updated : { ...alert, status: ACTIONS[action].status });
    } catch (err) {
      for (const button of row.querySelectorAll("button")) button.disabled = false;
      if (err instanceof ApiError && err.status === 403) {
        this.showError("权限不足：仅值班员可处置告警 Only an operator may act on alerts (403)");
      } else if (err instanceof ApiError && err.status === 409) {
        this.showError(`告警状态已变化 The alert has moved on (409): ${err.detail}`);
        this.load().catch(() => {});
      } else {
        this.showError(`操作失败 Action failed: ${err.message}`);
      }
    }
  }

  /** Offer the life-cycle buttons (the caller's role may act on alerts) or not; redraws. */
  setMayAct(mayAct) {
    if (mayAct === this.mayAct) return;
    this.mayAct = mayAct;
    this.rows.clear();
    this.render();
  }

  /** Mark the alert clicked last. */
  select(id) {
    this.selectedId = id;
    for (const { li } of this.rows.values()) li.classList.toggle("selected", li.dataset.alertId === id);
  }

  cameraLinks(alert) {
    const cameras = (alert.evidence && alert.evidence.cameras) || [];
    if (!cameras.length) return null;
    return h(
      "div",
      { class: "alert-cameras" },
      h("span", { class: "muted" }, "摄像头 Cameras "),
      cameras.flatMap((cam, i) => [
        i ? ", " : "",
        h(
          "a",
          {
            href: "#",
            class: "link",
            dataset: { cameraId: cam.id },
            title: cam.source ? "源摄像头 The camera that saw it" : "可见此处 Sees the place",
            onclick: (e) => (e.preventDefault(), e.stopPropagation(), this.onCamera(cam.id, alert)),
          },
          cam.name || cam.id,
        ),
        cam.source ? h("span", { class: "muted" }, " (源 source)") : null,
      ]),
    );
  }

  row(alert) {
    const actions = this.mayAct ? ACTIONS_BY_STATUS[alert.status] || [] : [];
    const li = h("li", {
      class: `alert severity-${alert.severity || "warning"} status-${alert.status}`,
      dataset: { alertId: alert.id, status: alert.status, board: alert.board || "", unit: alert.unit || "" },
      title: "定位并查看 Fly to and open",
      onclick: () => (this.select(alert.id), this.onFly(alert)),
    });
    const nearby = (alert.nearby_units || []).filter((u) => u.unit)[0];
    li.append(
      h(
        "div",
        { class: "alert-head" },
        h("span", { class: "alert-time mono" }, formatTime(alert.created_at)),
        alert.board ? h("span", { class: `board-chip board-${alert.board}` }, BOARD_NAMES[alert.board] || alert.board) : null,
        h("span", { class: `badge status-${alert.status}` }, STATUS_NAMES[alert.status] || alert.status),
      ),
      h("div", { class: "alert-title" }, alert.title),
      h("div", { class: "alert-evidence", title: observationIds(alert).join("\n") }, evidenceSummary(alert)),
      evidenceCrop(alert),
      this.cameraLinks(alert),
      h(
        "div",
        { class: "alert-unit" },
        h("span", { class: "muted" }, "→ "),
        h("span", { class: "unit-name" }, alert.unit || "未分派 Unassigned"),
        nearby ? h("span", { class: "muted" }, ` · 邻近 ${nearby.unit} ${Math.round(nearby.distance_m)} m`) : null,
      ),
      actions.length
        ? h(
            "div",
            { class: "alert-buttons" },
            actions.map((action) =>
              h(
                "button",
                {
                  type: "button",
                  class: `small action-${action}`,
                  dataset: { action },
                  onclick: (e) => (e.stopPropagation(), this.act(alert, action, li)),
                },
                ACTIONS[action].label,
              ),
            ),
          )
        : null,
    );
    if (alert.id === this.selectedId) li.classList.add("selected");
    return li;
  }

  /** The row of an alert, rebuilt only when the alert changed (rows keep their DOM nodes). */
  rowFor(alert) {
    const key = JSON.stringify(alert);
    const cached = this.rows.get(alert.id);
    if (cached && cached.key === key) return cached.li;
    const li = this.row(alert);
    this.rows.set(alert.id, { key, li });
    return li;
  }

  render() {
    const open = this.open;
    const shown = open.filter((alert) => passes(alert, this.filter));
    for (const id of this.rows.keys()) if (!this.alerts.has(id)) this.rows.delete(id);
    const rows = shown.slice(0, MAX_ROWS).map((alert) => this.rowFor(alert));
    rows.forEach((li, i) => {
      const here = this.list.children[i];
      if (here !== li) this.list.insertBefore(li, here || null);
    });
    while (this.list.children.length > rows.length) this.list.lastElementChild.remove();
    this.empty.hidden = shown.length > 0;
    this.empty.textContent = open.length
      ? "筛选条件下无告警 No open alerts match the filter"
      : "无待处理告警 No open alerts";
    this.syncSelects();
    this.onCount(open.length, shown.length);
  }
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
    time: alert.observed_at || alert.created_at,
    attributes: details.masked ? { masked: details.masked } : {},
  };
}
