// Wall mode (`?wall=1`, or the header's switch): the page as a control room's wall display. Text
// and map symbols scale with the screen (wall.css), the pointer hides when idle, the alert feed
// pages through itself when it is longer than its pane, and the browser goes fullscreen when
// the switch is pressed (a kiosk browser opened on the wall URL is fullscreen already).
const ROTATE_MS = 12000;
const IDLE_MS = 4000;

export class WallMode {
  /**
   * @param {{feed: HTMLElement, onChange: (on: boolean) => void}} parts `feed` is the scrolling
   *   alert list; `onChange` runs after each switch (sound default, layout).
   */
  constructor({ feed, onChange }) {
    this.feed = feed;
    this.onChange = onChange;
    this.on = false;
    this.rotations = 0;
    this.rotator = 0;
    this.idle = 0;
    document.addEventListener("pointermove", () => this.wake());
  }

  /** Switch wall mode on or off (kept in the address, so a reload stays in it). */
  set(on, { fullscreen = false } = {}) {
    this.on = Boolean(on);
    document.body.classList.toggle("wall", this.on);
    const url = new URL(window.location.href);
    if (this.on) url.searchParams.set("wall", "1");
    else url.searchParams.delete("wall");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    clearInterval(this.rotator);
    if (this.on) this.rotator = setInterval(() => this.rotate(), ROTATE_MS);
    if (fullscreen && this.on && !document.fullscreenElement) document.documentElement.requestFullscreen().catch(() => {});
    if (!this.on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
    this.wake();
    this.onChange(this.on);
    return this.on;
  }

  /** Scroll the feed by one pane's height, back to the top after its end. */
  rotate() {
    const feed = this.feed;
    if (feed.scrollHeight <= feed.clientHeight + 4) return;
    const atEnd = feed.scrollTop + feed.clientHeight >= feed.scrollHeight - 4;
    feed.scrollTo({ top: atEnd ? 0 : feed.scrollTop + feed.clientHeight * 0.9, behavior: "smooth" });
    this.rotations += 1;
  }

  /** Show the pointer again; hide it after IDLE_MS on the wall. */
  wake() {
    document.body.classList.remove("idle");
    clearTimeout(this.idle);
    if (this.on) this.idle = setTimeout(() => document.body.classList.add("idle"), IDLE_MS);
  }
}
