// The header clock: local time (large), date with the weekday, and the time zone (UTC offset and
// the zone's name), so a wall read from across the room and a screenshot both say when it was.
// A language switch shows on the next tick (within a second).
import { clockTime, isoDate, weekday, zoneLabel } from "./i18n.js";

/** Zone name of the browser, e.g. "Asia/Shanghai" ("" when unknown). */
function zoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

export class Clock {
  /** @param {{time: HTMLElement, date: HTMLElement, weekday: HTMLElement, zone: HTMLElement}} parts */
  constructor({ time, date, weekday: day, zone }) {
    Object.assign(this, { time, date, day, zone });
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick(now = new Date()) {
    this.time.textContent = clockTime(now);
    this.date.textContent = isoDate(now);
    this.day.textContent = weekday(now);
    const name = zoneName();
    this.zone.textContent = name ? `${zoneLabel(now)} ${name}` : zoneLabel(now);
  }
}
