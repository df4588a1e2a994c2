// Render errors never freeze the wall: Cesium stops its render loop when a frame throws; this
// counts the error, tells the status bar, and starts the loop again after a moment. When errors
// repeat (three within a minute) it first drops what the page added to the frame that can fail
// (video projections, via `onRepeat`) and then starts again.
const RESTART_MS = 1000;
const REPEAT_WINDOW_MS = 60000;
const REPEATS = 3;

export class RenderGuard {
  /**
   * @param {any} viewer the Cesium viewer (created with showRenderLoopErrors: false)
   * @param {{onError: (count: number, error: Error) => void, onRecover: () => void,
   *          onRepeat: () => void}} hooks
   */
  constructor(viewer, { onError, onRecover, onRepeat }) {
    this.viewer = viewer;
    this.onError = onError;
    this.onRecover = onRecover;
    this.onRepeat = onRepeat;
    this.count = 0;
    this.recent = [];
    this.timer = 0;
    this.lastError = null;
    viewer.scene.renderError.addEventListener((_, error) => this.failed(error));
  }

  failed(error) {
    this.count += 1;
    this.lastError = error;
    const now = Date.now();
    this.recent = [...this.recent.filter((at) => now - at < REPEAT_WINDOW_MS), now];
    console.warn("render error", error);
    this.onError(this.count, error);
    if (this.recent.length >= REPEATS) {
      this.recent = [];
      this.onRepeat();
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.restart(), RESTART_MS);
  }

  /** Start the render loop again (Cesium stopped it) and draw a frame. */
  restart() {
    this.viewer.useDefaultRenderLoop = true;
    this.viewer.scene.requestRender();
    this.onRecover();
  }

  /** Whether Cesium's render loop runs. */
  get running() {
    return this.viewer.useDefaultRenderLoop;
  }
}
