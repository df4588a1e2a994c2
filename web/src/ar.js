// The AR view: one camera's newest frame with labels of the buildings, roads, sites, sensors and
// cameras it sees (GET /api/cameras/{id}/labels: pixel positions of the calibrated image,
// occlusion from the server's ray casting; hidden ones are not drawn) and the live entities
// (projected here with the camera's model; the server does not test their occlusion). Labels
// sit at u / image_width and v / image_height of the displayed frame, so they stay on their
// pixel at any size; they follow PTZ moves and drone telemetry. Clicking a label opens the same
// panel as clicking the element on the map.
import { api, query } from "./api.js";
import { projectPoints } from "./cameramodel.js";
import { h } from "./dom.js";
import { formatTime, known, t } from "./i18n.js";

const Cesium = window.Cesium;

const LABEL_LIMIT = 200;
const MAX_HEIGHT_FRACTION = 0.55; // of the right column

/** The AR pane (made by the constructor, at the top of `container`, the right column). */
export class ArView {
  /**
   * @param {{container: HTMLElement, feeds: import("./frames.js").FrameFeeds,
   *   projection: import("./projection.js").VideoProjection, live: any,
   *   onSelect: (id: string) => void, onEntity: (payload: any) => void}} parts
   */
  constructor({ container, feeds, projection, live, onSelect, onEntity }) {
    this.container = container;
    this.feeds = feeds;
    this.projection = projection;
    this.live = live;
    this.onSelect = onSelect;
    this.onEntity = onEntity;
    this.cameraId = null;
    this.record = null;
    this.labels = [];
    this.focusId = null;
    this.renders = 0;
    this.labelRequests = 0;
    this.project = true;
    this.unsubscribe = null;
    this.pending = null;
    this.again = false;
    this.build();
    window.addEventListener("resize", () => this.layout());
    window.addEventListener("twin:layout", () => requestAnimationFrame(() => this.layout()));
  }

  build() {
    this.title = h("h2", { class: "ar-title", id: "ar-title", translate: "no" });
    this.kind = h("span", { class: "ar-kind" });
    this.pose = h("span", { class: "ar-pose mono", id: "ar-pose" });
    this.projectButton = h("button", { type: "button", class: "small", id: "ar-project", onclick: () => this.toggleProjection() });
    this.recordButton = h("button", {
      type: "button", class: "small", id: "ar-record",
      onclick: () => this.cameraId && this.onSelect(this.cameraId),
    });
    this.closeButton = h("button", { type: "button", class: "icon-button ar-close", id: "ar-close", onclick: () => this.close() }, "×");
    this.badge = h("span", { class: "ar-badge" });
    this.video = h("div", { class: "ar-video" });
    this.labelLayer = h("div", { class: "ar-labels", id: "ar-labels" });
    this.entityLayer = h("div", { class: "ar-labels ar-entities", id: "ar-entities" });
    this.placeholder = h("div", { class: "ar-placeholder", id: "ar-no-video" });
    this.stage = h("div", { class: "ar-stage", id: "ar-stage" }, this.video, this.placeholder, this.labelLayer, this.entityLayer);
    this.status = h("div", { class: "ar-status muted", id: "ar-status" });
    this.root = h(
      "section",
      { id: "ar", class: "pane ar-pane", hidden: true },
      h(
        "header",
        { class: "ar-head" },
        h("div", { class: "ar-heading" }, this.badge, this.kind, this.title),
        h("div", { class: "ar-tools" }, this.projectButton, this.recordButton, this.closeButton),
      ),
      this.pose,
      this.stage,
      this.status,
    );
    this.container.prepend(this.root);
    this.translate();
  }

  /** Labels in the current language (again after a switch). */
  translate() {
    this.badge.textContent = t("ar.badge");
    this.projectButton.textContent = t("ar.project");
    this.projectButton.title = t("ar.projectTitle");
    this.recordButton.textContent = t("ar.record");
    this.closeButton.title = t("common.close");
    this.closeButton.setAttribute("aria-label", t("common.close"));
    this.placeholder.textContent = t("ar.noVideo");
    if (!this.record) return;
    this.setRecord(this.record);
    this.renderStatus();
  }

  get isOpen() {
    return !this.root.hidden;
  }

  /**
   * Open the view of `cameraId`.
   * @param {string} cameraId
   * @param {{focusId?: string, project?: boolean}} options an element to emphasise (the panel it
   *   came from); whether to project the frame onto the model (default: as last chosen)
   */
  async open(cameraId, { focusId = null, project } = {}) {
    if (this.cameraId !== cameraId) this.detach();
    if (typeof project === "boolean") this.project = project;
    this.cameraId = cameraId;
    this.focusId = focusId;
    this.root.hidden = false;
    this.root.dataset.cameraId = cameraId;
    document.body.classList.add("ar-open");
    window.dispatchEvent(new Event("twin:layout"));
    const record = await api(`/api/cameras/${encodeURIComponent(cameraId)}`);
    if (this.cameraId !== cameraId) return;
    this.setRecord(record);
    if (!this.unsubscribe) {
      const feed = this.feeds.get(cameraId);
      this.video.replaceChildren(feed.canvas);
      this.unsubscribe = feed.subscribe((f) => this.onFrame(f));
    }
    await this.refreshLabels();
  }

  /** Close the view (and stop projecting its camera, unless it is a drone). */
  close() {
    this.detach();
    this.cameraId = null;
    this.record = null;
    this.labels = [];
    this.root.hidden = true;
    delete this.root.dataset.cameraId;
    document.body.classList.remove("ar-open");
    window.dispatchEvent(new Event("twin:layout"));
  }

  detach() {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    if (this.record && this.record.camera_kind !== "drone") this.projection.hide(this.record.id);
    this.labelLayer.replaceChildren();
    this.entityLayer.replaceChildren();
  }

  toggleProjection() {
    this.project = !this.project;
    this.updateProjection();
  }

  updateProjection() {
    this.projectButton.classList.toggle("on", this.project);
    this.projectButton.setAttribute("aria-pressed", String(this.project));
    if (!this.record) return;
    const feed = this.feeds.get(this.record.id);
    if (this.project && feed.hasFrame) this.projection.show(this.record, feed.canvas);
    else if (!this.project) this.projection.hide(this.record.id);
  }

  onFrame(feed) {
    this.placeholder.hidden = true;
    this.root.dataset.video = "yes";
    this.root.dataset.frames = String(feed.frames);
    if (this.projection.has(feed.cameraId)) this.projection.refresh(feed.cameraId);
    else this.updateProjection();
    this.renderStatus();
  }

  setRecord(record) {
    this.record = record;
    this.title.textContent = record.name || record.id;
    this.kind.textContent = known(`cameraKind.${record.camera_kind}`) ? t(`cameraKind.${record.camera_kind}`) : record.camera_kind || "";
    this.pose.textContent = poseText(record);
    const feed = this.feeds.get(record.id);
    this.placeholder.hidden = feed.hasFrame;
    this.root.dataset.video = feed.hasFrame ? "yes" : "no";
    this.layout();
    this.updateProjection();
  }

  /** The camera moved (a `camera` or `drone` message): new pose, new labels. */
  move(record) {
    if (!record || record.id !== this.cameraId) return;
    this.setRecord(record);
    this.renderEntities();
    this.refreshLabels();
  }

  /** Size the stage to the camera's aspect ratio within the width of its column. */
  layout() {
    if (!this.record) return;
    const style = getComputedStyle(this.root);
    const inner = this.root.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const maxHeight = Math.max(120, this.container.clientHeight * MAX_HEIGHT_FRACTION);
    const aspect = this.record.image_width / this.record.image_height;
    const width = Math.max(120, Math.min(inner, maxHeight * aspect));
    this.stage.style.width = `${Math.round(width)}px`;
    this.stage.style.height = `${Math.round(width / aspect)}px`;
  }

  /** Fetch the labels for the current pose; overlapping calls coalesce into one more. */
  refreshLabels() {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    const cameraId = this.cameraId;
    this.labelRequests += 1;
    this.pending = api(`/api/cameras/${encodeURIComponent(cameraId)}/labels${query({ limit: LABEL_LIMIT })}`)
      .then((body) => {
        if (this.cameraId !== cameraId) return;
        if (body.camera) this.record = { ...this.record, ...body.camera };
        this.labels = body.items || [];
        this.renderLabels();
      })
      .catch((err) => {
        this.status.textContent = t("ar.labelsFailed", { detail: err.message });
      })
      .finally(() => {
        this.pending = null;
        if (this.again && this.cameraId) {
          this.again = false;
          this.refreshLabels();
        }
      });
    return this.pending;
  }

  renderLabels() {
    const { image_width: width, image_height: height } = this.record;
    const shown = this.labels.filter(
      (item) => item.visible && item.u >= 0 && item.u <= width && item.v >= 0 && item.v <= height,
    );
    const named = this.declutter(shown);
    this.labelLayer.replaceChildren(
      ...shown.map((item) =>
        h(
          "button",
          {
            type: "button",
            class:
              `ar-label kind-${item.kind}${item.element_id === this.focusId ? " focus" : ""}` +
              (named.has(item.element_id) ? "" : " dot-only"),
            title: `${item.name || item.element_id} · ${item.distance_m.toFixed(0)} m`,
            style: `left: ${(100 * item.u) / width}%; top: ${(100 * item.v) / height}%`,
            dataset: { elementId: item.element_id, u: item.u, v: item.v },
            onclick: () => this.onSelect(item.element_id),
          },
          h("span", { class: "ar-dot" }),
          h("span", { class: "ar-text", translate: "no" }, item.name || item.element_id),
        ),
      ),
    );
    this.renders += 1;
    this.root.dataset.renders = String(this.renders);
    this.renderEntities();
    this.renderStatus();
  }

  /**
   * Which labels get their name tag: named elements, the focused one first, then in the
   * server's order (nearest first), each unless its tag would overlap one already placed.
   * The others keep their dot (its tooltip names them).
   */
  declutter(items) {
    const stage = this.stage.getBoundingClientRect();
    const sx = stage.width / this.record.image_width;
    const sy = stage.height / this.record.image_height;
    const context = (this.measure ||= document.createElement("canvas").getContext("2d"));
    context.font = "600 12px 'Noto Sans CJK SC', 'Segoe UI', sans-serif";
    const placed = [];
    const named = new Set();
    const order = [...items].sort((a, b) => (b.element_id === this.focusId) - (a.element_id === this.focusId));
    for (const item of order) {
      const focus = item.element_id === this.focusId;
      if (!focus && (!item.name || item.name === item.element_id)) continue;
      const w = context.measureText(item.name || item.element_id).width + 16;
      const x = item.u * sx - w / 2;
      const y = item.v * sy - 31;
      const box = [x - 2, y - 2, x + w + 2, y + 24];
      if (!focus && placed.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) continue;
      placed.push(box);
      named.add(item.element_id);
    }
    return named;
  }

  /** Live entities (twin.live) in view, projected with the camera model. */
  renderEntities() {
    if (!this.record || !this.live) return;
    const time = Cesium.JulianDate.now();
    const entities = [...this.live.tracks.keys()].map((id) => this.live.getById(id)).filter(Boolean);
    const positions = entities.map((entity) => entity.position && entity.position.getValue(time));
    const present = entities.filter((_, i) => positions[i]);
    const pixels = projectPoints(this.record, positions.filter(Boolean));
    const { image_width: width, image_height: height } = this.record;
    const markers = [];
    present.forEach((entity, i) => {
      const { u, v, inImage } = pixels[i];
      if (!inImage) return;
      const payload = entity.properties ? entity.properties.getValue(time) : { id: entity.id };
      markers.push(
        h(
          "button",
          {
            type: "button",
            class: `ar-label ar-entity kind-${payload.kind || "object"}`,
            style: `left: ${(100 * u) / width}%; top: ${(100 * v) / height}%`,
            dataset: { entityId: entity.id, u: u.toFixed(2), v: v.toFixed(2) },
            onclick: () => this.onEntity(payload),
          },
          h("span", { class: "ar-dot" }),
          h("span", { class: "ar-text", translate: "no" }, payload.cls || payload.kind || entity.id),
        ),
      );
    });
    this.entityLayer.replaceChildren(...markers);
  }

  renderStatus() {
    const feed = this.record ? this.feeds.get(this.record.id) : null;
    const shown = this.labelLayer.childElementCount;
    const hidden = this.labels.length - shown;
    const frame = feed && feed.hasFrame ? t("ar.video", { w: feed.canvas.width, h: feed.canvas.height }) : t("ar.noVideo");
    const time = this.record && this.record.time ? ` · ${formatTime(this.record.time)}` : "";
    this.status.textContent = `${frame} · ${t("ar.labels", { shown, hidden })}${time}`;
  }
}

/** A camera's pose in one line: heading, pitch, field of view, height, PTZ head. */
export function poseText(record) {
  const ptz = record.ptz
    ? `  ${t("ar.ptz", { pan: record.ptz.pan.toFixed(1), tilt: record.ptz.tilt.toFixed(1), zoom: record.ptz.zoom.toFixed(2) })}`
    : "";
  return `${t("ar.pose", {
    heading: record.heading.toFixed(1), pitch: record.pitch.toFixed(1),
    hfov: record.hfov.toFixed(1), height: record.height.toFixed(1),
  })}${ptz}`;
}
