// Label decluttering on the map: labels are placed in priority order and one that would overlap
// a label already placed is hidden (its icon stays; a click still opens it). Runs when the view
// moves and after updates, at most every `gapMs`.
const Cesium = window.Cesium;

/** Boxes [x0, y0, x1, y1] (CSS px) overlap. */
function overlaps(a, b) {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

export class Declutter {
  /**
   * @param {any} viewer
   * @param {() => Array<{label: any, position: any, text: string, priority: number}>} items
   *   the labels to place (position ECEF, text as drawn), asked for at each pass
   * @param {{gapMs?: number, fontPx?: () => number}} options
   */
  constructor(viewer, items, { gapMs = 400, fontPx = () => 13 } = {}) {
    this.viewer = viewer;
    this.items = items;
    this.gapMs = gapMs;
    this.fontPx = fontPx;
    this.timer = 0;
    this.last = 0;
    this.shown = 0;
    this.hidden = 0;
    this.state = new WeakMap(); // label graphics → shown by the last pass
    viewer.camera.percentageChanged = 0.05;
    viewer.camera.changed.addEventListener(() => this.soon());
    viewer.camera.moveEnd.addEventListener(() => this.soon());
  }

  /** Run a pass now if the last one is old enough, else once later. */
  soon() {
    if (this.timer) return;
    const wait = Math.max(0, this.last + this.gapMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.run();
    }, wait);
  }

  /** Place every label: highest priority first, skipping those that would overlap. */
  run() {
    this.last = performance.now();
    const scene = this.viewer.scene;
    const font = this.fontPx();
    const placed = [];
    let shown = 0;
    const items = this.items().sort((a, b) => b.priority - a.priority);
    for (const item of items) {
      const where = item.position && Cesium.SceneTransforms.worldToWindowCoordinates(scene, item.position);
      let show = false;
      if (where) {
        const width = item.text.length * font * 0.62 + font;
        const box = [where.x - width / 2, where.y - font * 3.1, where.x + width / 2, where.y - font * 1.2];
        show = !placed.some((other) => overlaps(box, other));
        if (show) placed.push(box);
      }
      if (this.state.get(item.label) !== show) {
        this.state.set(item.label, show);
        item.label.show = show;
      }
      if (show) shown += 1;
    }
    this.shown = shown;
    this.hidden = items.length - shown;
    scene.requestRender();
  }
}
