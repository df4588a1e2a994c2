// The alert feed: open alerts (new + acknowledged) from GET /api/alerts, kept current by `alert`
// messages, with Ack / Resolve actions (POST /api/alerts/{id}/ack|resolve).
import { api, ApiError } from "./api.js";
import { formatTime, h } from "./dom.js";

const STATUS_NAMES = {
  new: "新 New",
  acknowledged: "已确认 Acked",
  dispatched: "已派警 Dispatched",
  on_scene: "已到场 On scene",
  resolved: "已处置 Resolved",
  false_alarm: "误报 False alarm",
};

/** Statuses of an alert that is still open (shown in the feed). */
const OPEN_STATUSES = ["new", "acknowledged", "dispatched", "on_scene"];

/** The alert list in the left pane. */
export class AlertList {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, error: HTMLElement, onFly: (alert: any) => void, onCount: (n: number) => void}} parts
   */
  constructor({ list, empty, error, onFly, onCount }) {
    this.list = list;
    this.empty = empty;
    this.errorBox = error;
    this.onFly = onFly;
    this.onCount = onCount;
    this.alerts = new Map();
    this.errorTimer = 0;
  }

  /** Load the open alerts (every status in OPEN_STATUSES). */
  async load() {
    const pages = await Promise.all(
      OPEN_STATUSES.map((status) => api(`/api/alerts?status=${status}`)),
    );
    this.alerts.clear();
    for (const alert of pages.flatMap((page) => page.items || [])) {
      this.alerts.set(alert.id, alert);
    }
    this.render();
  }

  /** Insert or update one alert (from a message or an action's answer). */
  upsert(alert) {
    if (!alert || !alert.id) return;
    this.alerts.set(alert.id, { ...this.alerts.get(alert.id), ...alert });
    this.render();
  }

  get open() {
    return [...this.alerts.values()].filter((a) => OPEN_STATUSES.includes(a.status));
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => (this.errorBox.hidden = true), 8000);
  }

  async act(alert, action) {
    try {
      const updated = await api(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, {
        method: "POST",
      });
      this.upsert(updated && updated.id ? updated : { ...alert, status: action === "ack" ? "acknowledged" : "resolved" });
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        this.showError("权限不足：当前角色不能处理告警 Your role may not act on alerts (403)");
      } else {
        this.showError(`操作失败 Action failed: ${err.message}`);
      }
    }
  }

  row(alert) {
    const button = (label, action, cls) =>
      h(
        "button",
        {
          type: "button",
          class: `small ${cls}`,
          dataset: { action },
          onclick: (e) => (e.stopPropagation(), this.act(alert, action)),
        },
        label,
      );
    return h(
      "li",
      {
        class: `alert severity-${alert.severity || "warning"} status-${alert.status}`,
        dataset: { alertId: alert.id, status: alert.status },
        title: "定位 Fly to",
        onclick: () => this.onFly(alert),
      },
      h(
        "div",
        { class: "alert-head" },
        h("span", { class: "alert-time mono" }, formatTime(alert.created_at)),
        h("span", { class: `badge status-${alert.status}` }, STATUS_NAMES[alert.status] || alert.status),
      ),
      h("div", { class: "alert-title" }, alert.title),
      h(
        "div",
        { class: "alert-meta" },
        h("span", { class: "alert-unit" }, alert.unit || "未分派 Unassigned"),
        h(
          "span",
          { class: "alert-buttons" },
          alert.status === "new" ? button("确认 Ack", "ack", "ack") : null,
          OPEN_STATUSES.includes(alert.status) ? button("处置 Resolve", "resolve", "resolve") : null,
        ),
      ),
    );
  }

  render() {
    const open = this.open.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    this.list.replaceChildren(...open.map((alert) => this.row(alert)));
    this.empty.hidden = open.length > 0;
    this.onCount(open.length);
  }
}
