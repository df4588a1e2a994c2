// The alert sound: a short two-tone chime (Web Audio, no file) when a new critical alert arrives.
// Switchable; muted by default at a desk, on by default on the wall (a choice made with the switch
// is remembered). A kiosk browser must allow sound without a click
// (`--autoplay-policy=no-user-gesture-required`), else the first click on the page enables it.
const STORAGE_KEY = "twin.sound";

export class AlertSound {
  constructor() {
    this.context = null;
    this.played = 0;
    this.chosen = localStorage.getItem(STORAGE_KEY);
    this.on = this.chosen === "on";
    document.addEventListener("pointerdown", () => this.unlock(), { once: true });
  }

  /** The default for the mode (wall: on, desk: off) unless the user chose. */
  setDefault(wall) {
    if (this.chosen === null) this.on = wall;
  }

  /** Switch the sound on or off (remembered). */
  set(on) {
    this.on = on;
    this.chosen = on ? "on" : "off";
    localStorage.setItem(STORAGE_KEY, this.chosen);
    if (on) this.unlock();
  }

  unlock() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  /** Play the chime if the sound is on; true when it was played. */
  play() {
    if (!this.on) return false;
    this.unlock();
    if (this.context.state !== "running") return false;
    const ctx = this.context;
    const start = ctx.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.18, 660]]) {
      const tone = ctx.createOscillator();
      const gain = ctx.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      tone.connect(gain).connect(ctx.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.18);
    }
    this.played += 1;
    return true;
  }
}
