// Alert history: closed (and, on request, open) alerts from GET /api/history/alerts — the live
// store and the archive as one — filtered by time, unit, app, severity and status, with each
// incident's count, life-cycle times and the response time (dispatch → on scene). Pages with the
// API's cursor. A row opens the alert (fly to it, alert panel).
import { SEVERITIES, STATUSES, titleOf } from "./alertdata.js";
import { api, query } from "./api.js";
import { datum, h } from "./dom.js";
import { localStamp, onLang, pick, t } from "./i18n.js";

const PAGE = 100;
const STEPS = ["acknowledged_at", "dispatched_at", "on_scene_at"];

function stamp(iso) {
  return iso ? localStamp(Date.parse(iso)) : "—";
}

/** Seconds from `from` to `to` (ISO), or "—". */
function seconds(from, to) {
  if (!from || !to) return "—";
  return t("unit.seconds", { s: Math.round((Date.parse(to) - Date.parse(from)) / 1000) });
}

/** A datetime-local value (local time, minutes) for epoch ms. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export class AlertHistory {
  /**
   * @param {{root: HTMLElement, onOpen: (alert: any) => void}} parts `root` is the (hidden) dialog.
   */
  constructor({ root, onOpen }) {
    this.root = root;
    this.onOpen = onOpen;
    this.next = null;
    this.count = 0;
    this.items = [];
    this.units = [];
    this.apps = [];
    const now = Date.now();
    this.from = h("input", { type: "datetime-local", "data-filter": "from", value: localInput(now - 7 * 86400000) });
    this.to = h("input", { type: "datetime-local", "data-filter": "to", value: localInput(now + 60000) });
    this.unit = h("select", { "data-filter": "unit" });
    this.app = h("select", { "data-filter": "app" });
    this.severity = h("select", { "data-filter": "severity" });
    this.status = h("select", { "data-filter": "status" });
    this.head = h("tr");
    this.body = h("tbody");
    this.title = h("h2");
    this.summary = h("span", { class: "muted" }, "");
    this.more = h("button", { type: "button", class: "small", hidden: true });
    this.error = h("p", { class: "error", hidden: true });
    this.close = h("button", { type: "button", class: "icon-button", id: "history-close" }, "×");
    root.append(
      h(
        "div",
        { class: "history-box" },
        this.close,
        this.title,
        h("div", { class: "history-filters" }, this.from, this.to, this.unit, this.app, this.severity, this.status),
        this.error,
        h("div", { class: "history-scroll" }, h("table", { class: "history-table" }, h("thead", {}, this.head), this.body)),
        h("div", { class: "history-foot" }, this.summary, this.more),
      ),
    );
    this.close.addEventListener("click", () => this.hide());
    for (const input of [this.from, this.to, this.unit, this.app, this.severity, this.status]) {
      input.addEventListener("change", () => this.load().catch((err) => this.showError(err)));
    }
    this.more.addEventListener("click", () => this.load({ append: true }).catch((err) => this.showError(err)));
    this.translate();
    onLang(() => this.translate());
  }

  /** Labels, options and rows in the current language. */
  translate() {
    this.title.textContent = t("history.title");
    this.close.setAttribute("aria-label", t("common.close"));
    this.from.setAttribute("aria-label", t("history.from"));
    this.to.setAttribute("aria-label", t("history.to"));
    this.more.textContent = t("history.more");
    for (const [select, label] of [[this.unit, "filter.unit"], [this.app, "filter.app"], [this.severity, "filter.severity"], [this.status, "filter.status"]]) {
      select.setAttribute("aria-label", t(label));
    }
    this.fill(this.unit, t("filter.allUnits"), this.units.map((u) => [u, u]), true);
    this.fill(this.app, t("filter.allApps"), this.apps.map((a) => [a.id, pick(a.title, a.id)]), true);
    this.fill(this.severity, t("filter.allSeverities"), SEVERITIES.map((s) => [s, t(`severity.${s}`)]));
    this.fill(this.status, t("history.closed"), [["", t("history.all")], ...STATUSES.map((s) => [s, t(`status.${s}`)])], false, "closed");
    const columns = ["created", "alert", "count", "unit", "severity", "status", "acked", "dispatched", "onScene", "closedAt", "response"];
    this.head.replaceChildren(...columns.map((c) => h("th", {}, t(`history.col.${c}`))));
    this.body.replaceChildren(...this.items.map((alert) => this.row(alert)));
    this.renderSummary();
  }

  /** Open the dialog and load the first page; `units` and `apps` fill the filters. */
  async show({ units = [], apps = [] } = {}) {
    this.units = units;
    this.apps = apps;
    this.translate();
    this.root.hidden = false;
    await this.load();
  }

  hide() {
    this.root.hidden = true;
  }

  /** Options of a select: the first for "any" (value `anyValue`), keeping the choice. */
  fill(select, allLabel, options, data = false, anyValue = "") {
    const keep = select.options.length ? select.value : anyValue;
    select.replaceChildren(
      h("option", { value: anyValue }, allLabel),
      ...options.map(([value, label]) => h("option", { value, translate: data ? "no" : undefined }, label)),
    );
    select.value = keep;
  }

  params() {
    const status = this.status.value;
    return {
      from: new Date(this.from.value).toISOString(),
      to: new Date(this.to.value).toISOString(),
      unit: this.unit.value,
      app: this.app.value,
      severity: this.severity.value,
      status: status === "closed" ? "" : status,
      closed: status === "closed" ? "true" : "",
      limit: PAGE,
    };
  }

  async load({ append = false } = {}) {
    this.error.hidden = true;
    const params = { ...this.params(), cursor: append ? this.next : "" };
    const page = await api(`/api/history/alerts${query(params)}`);
    if (!append) {
      this.body.replaceChildren();
      this.items = [];
    }
    for (const alert of page.items || []) {
      this.items.push(alert);
      this.body.append(this.row(alert));
    }
    this.next = page.next;
    this.more.hidden = !page.next;
    this.renderSummary();
  }

  renderSummary() {
    this.summary.textContent = t("history.count", { n: this.items.length }) + (this.next ? " …" : "");
  }

  row(alert) {
    const closedAt = alert.resolved_at || alert.false_alarm_at;
    const tr = h(
      "tr",
      { class: `history-row severity-${alert.severity}`, dataset: { id: alert.id } },
      h("td", { class: "mono" }, stamp(alert.created_at)),
      h("td", {}, datum(titleOf(alert))),
      h("td", { class: "num" }, String(alert.count || 1)),
      h("td", {}, alert.unit ? datum(alert.unit) : "—"),
      h("td", {}, t(`severity.${alert.severity || "warning"}`)),
      h("td", {}, h("span", { class: `badge status-${alert.status}` }, t(`status.${alert.status}`))),
      ...STEPS.map((key) => h("td", { class: "mono" }, stamp(alert[key]))),
      h("td", { class: "mono" }, stamp(closedAt)),
      h("td", { class: "mono" }, seconds(alert.dispatched_at, alert.on_scene_at)),
    );
    tr.addEventListener("click", () => this.onOpen(alert));
    return tr;
  }

  showError(err) {
    this.error.textContent = t("history.failed", { detail: err.message });
    this.error.hidden = false;
  }

  /** Rows shown (for tests). */
  get rows() {
    return this.items.map((alert) => alert.id);
  }
}
