// The alert feed: open incidents (new, acknowledged, dispatched, on scene) from GET /api/alerts,
// kept current by `alert` messages. A row shows the incident's count, first and last seen, its
// evidence and the unit it is routed to; a click opens it (fly to it, alert panel). Filters by
// severity, board, app, unit and time. A role with the "alerts" permission (see access.js) gets
// the life-cycle buttons (POST /api/alerts/{id}/ack|dispatch|arrive|resolve|false-alarm) and
// bulk acknowledge (POST /api/alerts/ack). While the pointer is over the list, rows keep their
// places: new incidents wait behind a "n new" button and closed ones stay until it leaves.
import { APPS, evidenceParts, firstSeen, lastSeen, OPEN_STATUSES, passes, SEVERITIES, TIME_WINDOWS, titleOf } from "./alertdata.js";
import { api, ApiError, apiObjectUrl, query } from "./api.js";
import { datum, h } from "./dom.js";
import { formatTime, lang, pick, t } from "./i18n.js";

/** Life-cycle actions: API path segment → the status it leads to. */
export const ACTIONS = {
  ack: "acknowledged",
  dispatch: "dispatched",
  arrive: "on_scene",
  resolve: "resolved",
  "false-alarm": "false_alarm",
};

/** The actions offered in each open status (the server also allows skipping forward). */
export const ACTIONS_BY_STATUS = {
  new: ["ack", "dispatch", "false-alarm"],
  acknowledged: ["dispatch", "resolve", "false-alarm"],
  dispatched: ["arrive", "resolve", "false-alarm"],
  on_scene: ["resolve", "false-alarm"],
};

const LOAD_LIMIT = 500;
const MAX_ROWS = 200;
const HOLD_IDLE_MS = 6000;
const RENDER_GAP_MS = 50; // a pointer resting this long over the list lets the rows move again
const RANK = (status) => OPEN_STATUSES.indexOf(status);

/** The frame crop of the observed box (evidence.crop), loaded with the token; null if none. */
export function evidenceCrop(alert, cls = "alert-crop") {
  const url = alert.evidence && alert.evidence.crop;
  if (!url) return null;
  const img = h("img", { class: cls, alt: t("alerts.crop") });
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

/** The evidence line: catalog text and data (untranslated) separated by dots. */
export function evidenceLine(alert) {
  return evidenceParts(alert).flatMap(([text, data], i) => [i ? " · " : "", data ? datum(text) : text]);
}

/** Buttons of the life-cycle actions offered for `alert` (empty without the permission). */
export function actionButtons(alert, onAct) {
  return (ACTIONS_BY_STATUS[alert.status] || []).map((action) =>
    h(
      "button",
      {
        type: "button",
        class: `small action-${action}`,
        dataset: { action },
        onclick: (e) => (e.stopPropagation(), onAct(action, e.currentTarget)),
      },
      t(`action.${action}`),
    ),
  );
}

/** The alert list in the left column. */
export class AlertList {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, error: HTMLElement, filters: HTMLElement,
   *          bulk: HTMLElement, held: HTMLButtonElement,
   *          onOpen: (alert: any) => void, onCamera: (id: string, alert: any) => void,
   *          onChange: () => void, onFilter?: (filter: any) => void}} parts
   *   `onOpen` runs when an alert is clicked (fly to it, open its panel); `onCamera` when the
   *   link of a camera that sees the place is clicked; `onChange` after every redraw.
   */
  constructor({ list, empty, error, filters, bulk, held, onOpen, onCamera, onChange, onFilter = () => {} }) {
    Object.assign(this, { list, empty, filters, bulk, held, onOpen, onCamera, onChange, onFilter });
    this.errorBox = error;
    this.alerts = new Map();
    // Alerts that arrive while a load() is in flight, one map per load: its answer may predate
    // them, so they are applied again on top of it.
    this.arriving = new Set();
    this.rows = new Map();
    this.closed = new Set();
    this.filter = { severity: "", board: "", app: "", unit: "", minutes: 0 };
    this.boards = [];
    this.units = new Set();
    this.selectedId = null;
    this.checked = new Set();
    this.errorTimer = 0;
    this.mayAct = false;
    this.hovered = false;
    this.frozen = [];
    this.holdTimer = 0;
    this.renderTimer = 0;
    this.selects = {};
    list.addEventListener("mouseenter", () => {
      this.hovered = true;
      this.frozen = [...this.list.children].map((li) => li.dataset.alertId);
      this.restless();
    });
    list.addEventListener("mousemove", () => this.restless());
    list.addEventListener("mouseleave", () => this.release());
    held.addEventListener("click", () => this.release());
    this.buildFilters();
  }

  /** The pointer moved over the list: keep the rows still until it rests for HOLD_IDLE_MS. */
  restless() {
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.release(), HOLD_IDLE_MS);
  }

  /** Let the rows move again (the pointer left or rested, or "n new" was pressed). */
  release() {
    clearTimeout(this.holdTimer);
    if (!this.hovered) return;
    this.hovered = false;
    this.frozen = [];
    this.render();
  }

  buildFilters() {
    const select = (name, onChange) => {
      const el = h("select", { id: `alert-${name}`, "data-filter": name, onchange: () => onChange(el.value) });
      this.selects[name] = el;
      return el;
    };
    this.filters.replaceChildren(
      select("severity", (severity) => this.setFilter({ severity })),
      select("board", (board) => this.setFilter({ board })),
      select("app", (app) => this.setFilter({ app })),
      select("unit", (unit) => this.setFilter({ unit })),
      select("minutes", (minutes) => this.setFilter({ minutes: Number(minutes) })),
    );
    this.syncSelects();
  }

  /** Load the open alerts (every status in OPEN_STATUSES). */
  async load() {
    const requests = OPEN_STATUSES.map((status) => api(`/api/alerts${query({ status, limit: LOAD_LIMIT })}`));
    const arrived = new Map();
    this.arriving.add(arrived);
    let pages;
    try {
      pages = await Promise.all(requests);
    } finally {
      this.arriving.delete(arrived);
    }
    this.alerts.clear();
    for (const alert of pages.flatMap((page) => page.items || [])) this.alerts.set(alert.id, alert);
    for (const alert of arrived.values()) this.apply(alert);
    this.render();
  }

  /**
   * Insert or update one alert (from a message or an action's answer); true when unknown. The
   * feed redraws once for a burst (a connection's snapshot brings every open alert at once).
   */
  upsert(alert) {
    if (!alert || !alert.id) return false;
    const fresh = !this.alerts.has(alert.id) && !this.closed.has(alert.id);
    for (const arrived of this.arriving) arrived.set(alert.id, alert);
    this.apply(alert);
    this.renderSoon();
    return fresh;
  }

  /** Redraw after the current burst of updates. */
  renderSoon() {
    if (this.renderTimer) return;
    this.renderTimer = setTimeout(() => {
      this.renderTimer = 0;
      this.render();
    }, RENDER_GAP_MS);
  }

  /** Take one alert into the open set (or close it), never stepping a status back. */
  apply(alert) {
    if (this.closed.has(alert.id)) return;
    const known = this.alerts.get(alert.id);
    // A message may arrive after an action's answer: never step a status back.
    if (known && RANK(alert.status) !== -1 && RANK(alert.status) < RANK(known.status)) return;
    if (known && (alert.count || 1) < (known.count || 1)) return;
    if (OPEN_STATUSES.includes(alert.status)) {
      this.alerts.set(alert.id, { ...known, ...alert });
    } else {
      this.alerts.delete(alert.id);
      this.closed.add(alert.id);
      this.checked.delete(alert.id);
    }
  }

  get(id) {
    return this.alerts.get(id);
  }

  /** Open alerts, newest incident first (all of them, ignoring the filter). */
  get open() {
    return [...this.alerts.values()].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)) || (a.id < b.id ? -1 : 1));
  }

  /** Open alerts that pass the filter. */
  get shown() {
    const now = Date.now();
    return this.open.filter((alert) => passes(alert, this.filter, now));
  }

  /** Change the filter and redraw. */
  setFilter(change) {
    this.filter = { ...this.filter, ...change };
    this.syncSelects();
    this.onFilter(this.filter);
    this.render();
  }

  /** Board options and units from GET /api/boards. */
  setBoards(data) {
    this.boards = (data && data.boards) || [];
    this.rows.clear(); // titles and board names come from this answer
    for (const item of (data && data.units) || []) if (item.unit) this.units.add(item.unit);
    this.syncSelects();
  }

  /** Units known from the catalog (jurisdictions), for the unit filter. */
  addUnits(units) {
    for (const unit of units) if (unit) this.units.add(unit);
    this.syncSelects();
  }

  syncSelects() {
    for (const alert of this.alerts.values()) if (alert.unit) this.units.add(alert.unit);
    const boards = this.boards.map((b) => [b.id, pick(b.title, b.id)]);
    const apps = [...APPS.entries()]
      .filter(([, app]) => !this.filter.board || app.board === this.filter.board)
      .map(([id, app]) => [id, pick(app.title, id)]);
    this.fill("severity", t("filter.allSeverities"), SEVERITIES.map((s) => [s, t(`severity.${s}`)]));
    this.fill("board", t("filter.allBoards"), boards, true);
    this.fill("app", t("filter.allApps"), apps, true);
    this.fill("unit", t("filter.allUnits"), [...this.units].sort().map((u) => [u, u]), true);
    this.fill("minutes", t("filter.anyTime"), TIME_WINDOWS.slice(1).map((m) => [String(m), t(`filter.last${m}`)]));
  }

  /** Fill one filter's options (data labels untranslated), keeping its value. */
  fill(name, allLabel, options, data = false) {
    const select = this.selects[name];
    const value = String(this.filter[name] || "");
    const key = JSON.stringify([lang(), options]);
    if (select.dataset.options !== key) {
      select.dataset.options = key;
      select.setAttribute("aria-label", t(`filter.${name}`));
      select.replaceChildren(
        h("option", { value: name === "minutes" ? "0" : "" }, allLabel),
        ...options.map(([id, label]) => h("option", { value: id, translate: data ? "no" : undefined }, label)),
      );
    }
    select.value = name === "minutes" ? value || "0" : value;
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => (this.errorBox.hidden = true), 10000);
  }

  /** The text shown for a refused action: 403 (role), 409 (moved on) or any other failure. */
  actionError(err) {
    if (err instanceof ApiError && err.status === 403) return t("alerts.forbidden");
    if (err instanceof ApiError && err.status === 409) return t("alerts.movedOn", { detail: err.detail });
    return t("alerts.actionFailed", { detail: err.message });
  }

  /** POST one life-cycle action (buttons of `scope` disabled meanwhile). */
  async act(alert, action, scope) {
    const buttons = scope ? [...scope.querySelectorAll("button")] : [];
    for (const button of buttons) button.disabled = true;
    try {
      const updated = await api(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, { method: "POST" });
      this.upsert(updated && updated.id ? updated : { ...alert, status: ACTIONS[action] });
      return updated;
    } catch (err) {
      for (const button of buttons) button.disabled = false;
      this.showError(this.actionError(err));
      if (err instanceof ApiError && err.status === 409) this.load().catch(() => {});
      return null;
    }
  }

  /** Acknowledge `ids` at once (POST /api/alerts/ack); returns how many moved. */
  async acknowledge(ids) {
    if (!ids.length) return 0;
    try {
      const body = await api("/api/alerts/ack", { method: "POST", body: { ids } });
      for (const alert of body.items || []) this.upsert(alert);
      this.checked.clear();
      if ((body.failed || []).length) this.showError(t("alerts.bulkFailed", { n: body.failed.length }));
      this.render();
      return (body.items || []).length;
    } catch (err) {
      this.showError(this.actionError(err));
      return 0;
    }
  }

  /** Offer the life-cycle buttons and bulk acknowledge (the role may act on alerts) or not. */
  setMayAct(mayAct) {
    if (mayAct === this.mayAct) return;
    this.mayAct = mayAct;
    this.rows.clear();
    this.render();
  }

  /** Mark the alert opened last. */
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
      h("span", { class: "muted" }, `${t("alerts.cameras")} `),
      cameras.flatMap((cam, i) => [
        i ? ", " : "",
        h(
          "a",
          {
            href: "#",
            class: "link",
            translate: "no",
            dataset: { cameraId: cam.id },
            title: t(cam.source ? "alerts.sourceCamera" : "alerts.seesPlace"),
            onclick: (e) => (e.preventDefault(), e.stopPropagation(), this.onCamera(cam.id, alert)),
          },
          cam.name || cam.id,
        ),
        cam.source ? h("span", { class: "muted" }, ` (${t("alerts.source")})`) : null,
      ]),
    );
  }

  seenLine(alert) {
    const count = alert.count || 1;
    const first = formatTime(new Date(firstSeen(alert)).toISOString());
    if (count === 1) return h("div", { class: "alert-seen muted" }, t("alerts.seenOnce", { time: first }));
    const last = formatTime(new Date(lastSeen(alert)).toISOString());
    return h("div", { class: "alert-seen muted" }, t("alerts.seenMany", { n: count, first, last }));
  }

  row(alert) {
    const li = h("li", {
      class: `alert severity-${alert.severity || "warning"} status-${alert.status}`,
      dataset: {
        alertId: alert.id, status: alert.status, board: alert.board || "", unit: alert.unit || "",
        app: alert.app || "", severity: alert.severity || "", count: String(alert.count || 1),
      },
      title: t("alerts.open"),
      onclick: () => (this.select(alert.id), this.onOpen(alert)),
    });
    const nearby = (alert.nearby_units || []).filter((u) => u.unit && u.distance_m > 0)[0];
    const board = this.boards.find((b) => b.id === alert.board);
    const check = this.mayAct && alert.status === "new"
      ? h("input", {
          type: "checkbox", class: "alert-check", "aria-label": t("alerts.choose"),
          checked: this.checked.has(alert.id),
          onclick: (e) => e.stopPropagation(),
          onchange: (e) => (e.currentTarget.checked ? this.checked.add(alert.id) : this.checked.delete(alert.id), this.renderBulk()),
        })
      : null;
    const count = alert.count || 1;
    li.append(
      ...[
        h(
          "div",
          { class: "alert-head" },
          check,
          h("span", { class: `sev-chip sev-${alert.severity}` }, t(`severity.${alert.severity || "warning"}`)),
          board ? h("span", { class: `board-chip board-${alert.board}`, translate: "no" }, pick(board.title, board.id)) : null,
          h("span", { class: `badge status-${alert.status}` }, t(`status.${alert.status}`)),
        ),
        h(
          "div",
          { class: "alert-title" },
          datum(titleOf(alert)),
          count > 1 ? h("span", { class: "alert-count", title: t("alerts.countTitle") }, `×${count}`) : null,
        ),
        this.seenLine(alert),
        h("div", { class: "alert-evidence" }, evidenceLine(alert)),
        evidenceCrop(alert),
        this.cameraLinks(alert),
        h(
          "div",
          { class: "alert-unit" },
          h("span", { class: "muted" }, "→ "),
          alert.unit ? datum(alert.unit, "unit-name") : h("span", { class: "unit-name" }, t("alerts.unassigned")),
          nearby ? h("span", { class: "muted" }, ` · ${t("alerts.nearby")} `, datum(nearby.unit), ` ${Math.round(nearby.distance_m)} m`) : null,
        ),
        this.mayAct ? h("div", { class: "alert-buttons" }, actionButtons(alert, (action) => this.act(alert, action, li))) : null,
      ].filter(Boolean),
    );
    if (alert.id === this.selectedId) li.classList.add("selected");
    return li;
  }

  /** The row of an alert, rebuilt only when the alert (or the language) changed. */
  rowFor(alert) {
    const key = JSON.stringify([lang(), this.checked.has(alert.id), alert]);
    const cached = this.rows.get(alert.id);
    if (cached && cached.key === key) return cached.li;
    const li = this.row(alert);
    this.rows.set(alert.id, { key, li });
    return li;
  }

  /** Bulk acknowledge: select all new shown, acknowledge the chosen ones. */
  renderBulk() {
    this.bulk.hidden = !this.mayAct;
    if (!this.mayAct) return;
    const fresh = this.shown.filter((a) => a.status === "new").map((a) => a.id);
    const chosen = [...this.checked].filter((id) => this.alerts.has(id));
    this.bulk.replaceChildren(
      h("button", { type: "button", class: "small", id: "alert-select-all", disabled: !fresh.length,
                    onclick: () => (fresh.forEach((id) => this.checked.add(id)), this.render()) },
        t("alerts.selectNew", { n: fresh.length })),
      h("button", { type: "button", class: "small action-ack", id: "alert-ack-selected", disabled: !chosen.length,
                    onclick: () => this.acknowledge(chosen) },
        t("alerts.ackSelected", { n: chosen.length })),
    );
  }

  render() {
    const open = this.open;
    let shown = this.shown;
    for (const id of this.rows.keys()) if (!this.alerts.has(id) && !this.frozen.includes(id)) this.rows.delete(id);
    let waiting = 0;
    if (this.hovered) {
      // Keep the rows the pointer saw, in their places; newer ones wait.
      const visible = new Set(shown.map((a) => a.id));
      waiting = shown.filter((a) => !this.frozen.includes(a.id)).length;
      shown = this.frozen
        .map((id) => this.alerts.get(id) || (this.rows.get(id) && { id, gone: true }))
        .filter((a) => a && (a.gone || visible.has(a.id)));
    }
    const rows = shown.slice(0, MAX_ROWS).map((alert) => (alert.gone ? this.goneRow(alert.id) : this.rowFor(alert)));
    rows.forEach((li, i) => {
      const here = this.list.children[i];
      if (here !== li) this.list.insertBefore(li, here || null);
    });
    while (this.list.children.length > rows.length) this.list.lastElementChild.remove();
    this.held.hidden = !waiting;
    this.held.textContent = t("alerts.held", { n: waiting });
    this.empty.hidden = shown.length > 0;
    this.empty.textContent = open.length ? t("alerts.noneMatch") : t("alerts.none");
    this.syncSelects();
    this.renderBulk();
    this.onChange();
  }

  /** A closed alert's row kept (dimmed) while the pointer is over the list. */
  goneRow(id) {
    const li = this.rows.get(id).li;
    li.classList.add("gone");
    return li;
  }
}
