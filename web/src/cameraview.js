// A camera's part of its panel: the live pose (catalog < calibration < live PTZ / drone pose, as
// GET /api/cameras/{id} and `camera` / `drone` messages give it), the AR view button, and for a
// PTZ or eagle-eye head and a role that may steer it, pan / tilt / zoom controls
// (PUT /api/cameras/{id}/ptz with the head's new position).
import { poseText } from "./ar.js";
import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { section } from "./panel.js";

const PAN_STEP = 10; // deg
const TILT_STEP = 5; // deg
const ZOOM_STEP = 0.1; // of the zoom range 0 (wide) – 1 (tele)
const STEERABLE = new Set(["ptz", "eagle-eye"]);

/** The head position after one step of `move` from `ptz` ({pan, tilt, zoom}). */
export function stepped(ptz, move) {
  const next = { pan: ptz.pan, tilt: ptz.tilt, zoom: ptz.zoom };
  if (move === "left") next.pan -= PAN_STEP;
  if (move === "right") next.pan += PAN_STEP;
  if (move === "up") next.tilt = Math.min(90, next.tilt + TILT_STEP);
  if (move === "down") next.tilt = Math.max(-90, next.tilt - TILT_STEP);
  if (move === "in") next.zoom = Math.min(1, next.zoom + ZOOM_STEP);
  if (move === "out") next.zoom = Math.max(0, next.zoom - ZOOM_STEP);
  next.pan = ((((next.pan + 180) % 360) + 360) % 360) - 180;
  return next;
}

/**
 * The camera sections of a camera element's panel.
 * @param {any} record the camera's live record (twin.cameras.get(id)) or undefined
 * @param {{mayMove: boolean, onAr: () => void, onError: (message: string) => void}} ctx
 */
export function cameraSections(record, { mayMove, onAr, onError }) {
  if (!record) return [];
  const pose = h("p", { class: "mono camera-pose", id: "camera-pose", dataset: { heading: record.heading.toFixed(3) } }, poseText(record));
  const steer = mayMove && STEERABLE.has(record.camera_kind);
  const move = async (direction, button) => {
    const ptz = record.ptz || { pan: record.heading, tilt: record.pitch, zoom: 0 };
    button.disabled = true;
    try {
      await api(`/api/cameras/${encodeURIComponent(record.id)}/ptz`, { method: "PUT", body: stepped(ptz, direction) });
    } catch (err) {
      onError(t("ptz.failed", { detail: err.message }));
    } finally {
      button.disabled = false;
    }
  };
  const control = (direction, glyph) =>
    h("button", { type: "button", class: `ptz-${direction}`, dataset: { ptz: direction }, title: t(`ptz.${direction}`),
                  "aria-label": t(`ptz.${direction}`), onclick: (e) => move(direction, e.currentTarget) }, glyph);
  return [
    section(
      t("camera.live"),
      pose,
      h("div", { class: "panel-actions" }, h("button", { type: "button", id: "camera-ar", class: "primary", onclick: onAr }, t("camera.ar"))),
      steer
        ? h(
            "div",
            { class: "ptz-controls", id: "ptz-controls" },
            control("left", "◀"), control("up", "▲"), control("down", "▼"), control("right", "▶"),
            control("out", "−"), control("in", "+"),
          )
        : null,
    ),
  ];
}
