// The alert panel: one incident with its evidence (the crop, the rule's figures, the
// observations, the entity), the cameras that see the place (each opens its AR view on it),
// the life cycle (who did what when), the element it happened at, and the actions the caller
// may take.
import { actionButtons, evidenceCrop, evidenceLine } from "./alerts.js";
import { firstSeen, lastSeen, LIFE_CYCLE, observationIds, titleOf } from "./alertdata.js";
import { api } from "./api.js";
import { datum, h } from "./dom.js";
import { formatTime, localStamp, pick, t } from "./i18n.js";
import { list, section, table } from "./panel.js";

/**
 * The panel content of `alert` (call again to redraw it).
 * @param {any} alert the alert record
 * @param {{boards: any[], mayAct: boolean, onAct: (action: string, button: HTMLElement) => void,
 *          onCamera: (id: string) => void, onSelect: (id: string) => void,
 *          onEntity: (id: string) => void, onFly: () => void, entityOnMap: boolean}} ctx
 */
export function alertContent(alert, ctx) {
  const board = (ctx.boards || []).find((b) => b.id === alert.board);
  const app = board && (board.apps || []).find((a) => a.id === alert.app);
  const evidence = alert.evidence || {};
  const count = alert.count || 1;
  return [
    h(
      "div",
      { class: "panel-kind" },
      t("panel.alert"),
      " ",
      h("span", { class: `sev-chip sev-${alert.severity}` }, t(`severity.${alert.severity || "warning"}`)),
      " ",
      h("span", { class: `badge status-${alert.status}` }, t(`status.${alert.status}`)),
    ),
    h("h2", { class: "panel-title", id: "panel-name", translate: "no" }, titleOf(alert)),
    h("div", { class: "panel-id mono", id: "panel-id", translate: "no" }, alert.id),
    h(
      "div",
      { class: "panel-actions" },
      h("button", { type: "button", onclick: ctx.onFly }, t("panel.flyTo")),
      ctx.mayAct ? actionButtons(alert, ctx.onAct) : null,
    ),
    section(
      t("panel.summary"),
      table([
        [t("panel.board"), board ? datum(`${pick(board.title)}${app ? ` · ${pick(app.title)}` : ""}`) : null],
        [t("panel.count"), String(count)],
        [t("panel.firstSeen"), localStamp(firstSeen(alert))],
        [t("panel.lastSeen"), count > 1 ? localStamp(lastSeen(alert)) : null],
        [t("panel.unit"), alert.unit ? datum(alert.unit, "strong") : t("alerts.unassigned")],
        [
          t("panel.nearbyUnits"),
          (alert.nearby_units || []).filter((u) => u.unit && u.distance_m > 0).length
            ? h("span", {}, (alert.nearby_units || []).filter((u) => u.unit && u.distance_m > 0)
                .flatMap((u, i) => [i ? ", " : "", datum(u.unit), ` ${Math.round(u.distance_m)} m`]))
            : null,
        ],
        [t("panel.position"), `${Number(alert.lon).toFixed(6)}, ${Number(alert.lat).toFixed(6)}`],
      ]),
    ),
    section(
      t("panel.evidence"),
      evidenceCrop(alert, "panel-crop"),
      h("p", { class: "alert-evidence", title: observationIds(alert).join("\n") }, evidenceLine(alert)),
      alert.entity_id && ctx.entityOnMap
        ? h("p", {}, h("a", { href: "#", class: "link", id: "alert-entity",
            onclick: (e) => (e.preventDefault(), ctx.onEntity(alert.entity_id)) }, t("panel.showEntity")))
        : null,
    ),
    section(
      t("panel.cameras"),
      list(evidence.cameras, (cam) => [
        h("a", { href: "#", class: "link", translate: "no", dataset: { cameraId: cam.id },
                 onclick: (e) => (e.preventDefault(), ctx.onCamera(cam.id)) }, cam.name || cam.id),
        cam.source ? h("span", { class: "muted" }, ` (${t("alerts.source")})`) : null,
        typeof cam.u === "number" ? h("span", { class: "muted mono" }, ` px ${Math.round(cam.u)}, ${Math.round(cam.v)}`) : null,
      ]),
    ),
    section(t("panel.lifeCycle"), lifeCycle(alert)),
    section(t("panel.element"), elementLink(alert, ctx.onSelect)),
  ];
}

/** The life cycle as a timeline: raised, then each step taken (time, who). */
function lifeCycle(alert) {
  const steps = [["new", alert.created_at, null], ...LIFE_CYCLE.map(([status, at, by]) => [status, alert[at], alert[by]])];
  return h(
    "ol",
    { class: "life-cycle" },
    steps
      .filter(([, at]) => at)
      .map(([status, at, by]) =>
        h(
          "li",
          { class: `step status-${status}`, dataset: { status } },
          h("span", { class: `badge status-${status}` }, t(status === "new" ? "panel.raised" : `status.${status}`)),
          " ",
          h("span", { class: "mono" }, formatTime(at)),
          by ? h("span", { class: "muted" }, " · ", datum(by)) : null,
        ),
      ),
  );
}

/** A link to the element the alert happened at, named once its record is in. */
function elementLink(alert, onSelect) {
  if (!alert.element_id) return h("p", { class: "muted" }, t("common.none"));
  const link = h(
    "a",
    { href: "#", class: "link", id: "alert-element", translate: "no", dataset: { elementId: alert.element_id },
      onclick: (e) => (e.preventDefault(), onSelect(alert.element_id)) },
    alert.element_id,
  );
  api(`/api/elements/${encodeURIComponent(alert.element_id)}`)
    .then((record) => {
      if (record.name) link.textContent = `${record.name} (${alert.element_id})`;
    })
    .catch(() => {});
  return h("p", {}, link);
}
