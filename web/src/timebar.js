// The time bar: pick a moment in the last hour / 6 h / day / week and replay it at 1×–60×,
// then go back to live. Drives a `Replay` (replay.js); the slider follows the replay clock.
import { h } from "./dom.js";
import { localStamp, onLang, t } from "./i18n.js";
import { SPEEDS } from "./replay.js";

const RANGES = [
  { ms: 3600000, key: "replay.range1h" },
  { ms: 6 * 3600000, key: "replay.range6h" },
  { ms: 24 * 3600000, key: "replay.range1d" },
  { ms: 7 * 24 * 3600000, key: "replay.range7d" },
];

export class TimeBar {
  /**
   * @param {{root: HTMLElement, toggle: HTMLButtonElement, replay: import("./replay.js").Replay,
   *          onModeChange?: (replaying: boolean) => void, onError?: (err: Error) => void}} parts
   */
  constructor({ root, toggle, replay, onModeChange = () => {}, onError = () => {} }) {
    this.root = root;
    this.replay = replay;
    this.onModeChange = onModeChange;
    this.onError = onError;
    this.rangeMs = RANGES[0].ms;
    this.range = h("select", { "data-control": "range" }, ...RANGES.map((r) => h("option", { value: String(r.ms) })));
    this.slider = h("input", { type: "range", min: "0", max: "1000", value: "1000", step: "1", "data-control": "time" });
    this.stamp = h("span", { class: "timebar-stamp mono" }, "—");
    this.playButton = h("button", { type: "button", class: "small", "data-control": "play" }, "▶");
    this.speedSelect = h("select", { "data-control": "speed" }, ...SPEEDS.map((s) => h("option", { value: String(s) }, `${s}×`)));
    this.liveButton = h("button", { type: "button", class: "small timebar-live" });
    this.counts = h("span", { class: "muted timebar-counts" }, "");
    this.title = h("span", { class: "timebar-title" });
    root.append(this.title, this.range, this.slider, this.stamp, this.playButton, this.speedSelect, this.counts, this.liveButton);
    toggle.addEventListener("click", () => (this.root.hidden ? this.open() : this.close()));
    this.range.addEventListener("change", () => {
      this.rangeMs = Number(this.range.value);
      this.follow(this.replay.time || Date.now());
    });
    this.slider.addEventListener("input", () => this.seekTo(this.sliderTime()));
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.speedSelect.addEventListener("change", () => this.replay.setSpeed(Number(this.speedSelect.value)));
    this.liveButton.addEventListener("click", () => this.close());
    this.translate();
    onLang(() => this.translate());
  }

  translate() {
    this.title.textContent = t("replay.title");
    this.liveButton.textContent = t("replay.back");
    this.range.setAttribute("aria-label", t("replay.range"));
    this.slider.setAttribute("aria-label", t("replay.time"));
    this.speedSelect.setAttribute("aria-label", t("replay.speed"));
    [...this.range.options].forEach((option, i) => (option.textContent = t(RANGES[i].key)));
    this.update(this.replay.state());
  }

  /** Show the bar and start replaying paused, 10 minutes ago (or at `timeMs`). */
  async open(timeMs = Date.now() - 600000, { speed = 1, paused = true } = {}) {
    this.root.hidden = false;
    this.speedSelect.value = String(speed);
    this.onModeChange(true);
    try {
      await this.replay.start(timeMs, { speed, paused });
    } catch (err) {
      this.onError(err);
    }
    this.update(this.replay.state());
  }

  /** Back to live: hide the bar, stop the replay. */
  close() {
    this.replay.stop();
    this.root.hidden = true;
    this.onModeChange(false);
  }

  sliderTime() {
    const end = Date.now();
    return end - this.rangeMs + (Number(this.slider.value) / 1000) * this.rangeMs;
  }

  async seekTo(timeMs) {
    try {
      await this.replay.seek(timeMs);
    } catch (err) {
      this.onError(err);
    }
  }

  togglePlay() {
    if (this.replay.playing) this.replay.pause();
    else this.replay.play();
  }

  /** Put the slider where `timeMs` is in the range (widening the range if needed). */
  follow(timeMs) {
    const end = Date.now();
    while (timeMs < end - this.rangeMs && this.rangeMs < RANGES[RANGES.length - 1].ms) {
      this.rangeMs = RANGES.find((r) => r.ms > this.rangeMs).ms;
      this.range.value = String(this.rangeMs);
    }
    const f = (timeMs - (end - this.rangeMs)) / this.rangeMs;
    this.slider.value = String(Math.round(Math.max(0, Math.min(1, f)) * 1000));
  }

  /** Reflect the replay's state (called on every tick). */
  update(state) {
    this.playButton.setAttribute("aria-label", t(state.playing ? "replay.pause" : "replay.play"));
    this.playButton.dataset.playing = String(Boolean(state.playing));
    if (!state.active) return;
    const ms = Date.parse(state.time);
    this.stamp.textContent = localStamp(ms);
    this.playButton.textContent = state.playing ? "❚❚" : "▶";
    this.counts.textContent = t("replay.counts", { entities: state.entities, alerts: state.alerts });
    if (document.activeElement !== this.slider) this.follow(ms);
  }
}
