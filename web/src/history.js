// Alert history: closed (and, on request, open) alerts from GET /api/history/alerts — the live
// store and the archive as one — filtered by time, unit, app, severity and status, with their
// life-cycle times and the response time (dispatch → on scene). Pages with the API's cursor.
import { api, query } from "./api.js";
import { STATUS_NAMES } from "./alerts.js";
import { h } from "./dom.js";
import { localStamp } from "./timebar.js";

const PAGE = 100;
const SEVERITIES = ["critical", "warning", "info"];
const STEPS = [
  ["acknowledged_at", "确认 Acked"],
  ["dispatched_at", "派警 Dispatched"],
  ["on_scene_at", "到场 On scene"],
];

function stamp(iso) {
  return iso ? localStamp(Date.parse(iso)) : "—";
}

/** Seconds from `from` to `to` (ISO), or "—". */
function seconds(from, to) {
  if (!from || !to) return "—";
  return `${Math.round((Date.parse(to) - Date.parse(from)) / 1000)} s`;
}

/** A datetime-local value (local time, minutes) for epoch ms. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export class AlertHistory {
  /**
   * @param {{root: HTMLElement, onFly: (alert: any) => void}} parts `root` is the (hidden) dialog.
   */
  constructor({ root, onFly }) {
    this.root = root;
    this.onFly = onFly;
    this.next = null;
    this.count = 0;
    const now = Date.now();
    this.from = h("input", { type: "datetime-local", value: localInput(now - 7 * 86400000), "aria-label": "从 From" });
    this.to = h("input", { type: "datetime-local", value: localInput(now + 60000), "aria-label": "到 To" });
    this.unit = h("select", { "aria-label": "单位 Unit" }, h("option", { value: "" }, "全部单位 All units"));
    this.app = h("select", { "aria-label": "应用 App" }, h("option", { value: "" }, "全部应用 All apps"));
    this.severity = h("select", { "aria-label": "级别 Severity" }, h("option", { value: "" }, "全部级别 All severities"),
      ...SEVERITIES.map((s) => h("option", { value: s }, s)));
    this.status = h("select", { "aria-label": "状态 Status" },
      h("option", { value: "closed" }, "已关闭 Closed"),
      h("option", { value: "" }, "全部 All"),
      ...Object.entries(STATUS_NAMES).map(([value, label]) => h("option", { value }, label)));
    this.body = h("tbody");
    this.summary = h("span", { class: "muted" }, "");
    this.more = h("button", { class: "small", hidden: true }, "加载更多 More");
    this.error = h("p", { class: "error", hidden: true });
    const close = h("button", { class: "icon-button", "aria-label": "关闭 Close" }, "×");
    root.append(h("div", { class: "history-box" },
      close,
      h("h2", {}, "告警历史 Alert history"),
      h("div", { class: "history-filters" }, this.from, this.to, this.unit, this.app, this.severity, this.status),
      this.error,
      h("div", { class: "history-scroll" },
        h("table", { class: "history-table" },
          h("thead", {}, h("tr", {},
            ...["创建 Created", "告警 Alert", "单位 Unit", "级别 Sev.", "状态 Status",
              ...STEPS.map(([, label]) => label), "关闭 Closed", "响应 Response"].map((t) => h("th", {}, t)))),
          this.body)),
      h("div", { class: "history-foot" }, this.summary, this.more)));
    close.addEventListener("click", () => this.hide());
    for (const input of [this.from, this.to, this.unit, this.app, this.severity, this.status]) {
      input.addEventListener("change", () => this.load().catch((err) => this.showError(err)));
    }
    this.more.addEventListener("click", () => this.load({ append: true }).catch((err) => this.showError(err)));
  }

  /** Open the dialog and load the first page; `units` and `apps` fill the filters. */
  async show({ units = [], apps = [] } = {}) {
    this.fill(this.unit, units.map((u) => [u, u]));
    this.fill(this.app, apps.map((a) => [a.id, a.title ? `${a.title.zh || ""} ${a.title.en || a.id}`.trim() : a.id]));
    this.root.hidden = false;
    await this.load();
  }

  hide() {
    this.root.hidden = true;
  }

  fill(select, options) {
    const keep = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const [value, label] of options) select.append(h("option", { value }, label));
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
      this.count = 0;
    }
    for (const alert of page.items || []) this.body.append(this.row(alert));
    this.count += (page.items || []).length;
    this.next = page.next;
    this.more.hidden = !page.next;
    this.summary.textContent = `${this.count} 条 alerts${page.next ? " …" : ""}`;
  }

  row(alert) {
    const closedAt = alert.resolved_at || alert.false_alarm_at;
    const tr = h("tr", { class: `history-row severity-${alert.severity}`, dataset: { id: alert.id } },
      h("td", { class: "mono" }, stamp(alert.created_at)),
      h("td", {}, alert.title),
      h("td", {}, alert.unit || "—"),
      h("td", {}, alert.severity),
      h("td", {}, h("span", { class: `badge status-${alert.status}` }, STATUS_NAMES[alert.status] || alert.status)),
      ...STEPS.map(([key]) => h("td", { class: "mono" }, stamp(alert[key]))),
      h("td", { class: "mono" }, stamp(closedAt)),
      h("td", { class: "mono" }, seconds(alert.dispatched_at, alert.on_scene_at)));
    tr.addEventListener("click", () => this.onFly(alert));
    return tr;
  }

  showError(err) {
    this.error.textContent = `历史加载失败 History: ${err.message}`;
    this.error.hidden = false;
  }

  /** Rows shown (for tests). */
  get rows() {
    return [...this.body.querySelectorAll("tr")].map((tr) => tr.dataset.id);
  }
}
