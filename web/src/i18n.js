// Languages of the page: zh-CN and en from one message catalog (messages.js). `t(key, params)`
// gives a message with `{name}` placeholders filled; elements with `data-i18n="key"` (text),
// `data-i18n-title`, `data-i18n-placeholder` and `data-i18n-aria` (attributes) are filled by
// `applyStatic`. The language comes from `?lang=`, else the last choice (localStorage), else
// zh-CN; `setLang` switches it and tells every listener so each part redraws itself. Text that
// is data (names, units, ids) is never translated and sits in elements marked translate="no".
import { MESSAGES } from "./messages.js";

export const LANGS = Object.keys(MESSAGES);
const STORAGE_KEY = "twin.lang";
const STATIC_ATTRIBUTES = [
  ["data-i18n-title", "title"],
  ["data-i18n-placeholder", "placeholder"],
  ["data-i18n-aria", "aria-label"],
];
const listeners = new Set();
let current = pickLang();

function pickLang() {
  const asked = new URL(window.location.href).searchParams.get("lang");
  for (const candidate of [asked, localStorage.getItem(STORAGE_KEY)]) {
    if (candidate && MESSAGES[candidate]) return candidate;
  }
  return "zh-CN";
}

/** The current language ("zh-CN" | "en"). */
export function lang() {
  return current;
}

/**
 * The message `key` in the current language with `{name}` placeholders replaced from `params`.
 * A key missing from the catalog is shown as itself (and the catalog test fails on it).
 * @param {string} key
 * @param {Record<string, string|number>} [params]
 */
export function t(key, params = {}) {
  const template = MESSAGES[current][key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Whether the catalog has message `key`. */
export function known(key) {
  return key in MESSAGES[current];
}

/** The text of a bilingual title object `{zh, en}` in the current language. */
export function pick(title, fallback = "") {
  if (!title || typeof title !== "object") return title || fallback;
  return (current === "en" ? title.en || title.zh : title.zh || title.en) || fallback;
}

/** Fill the `data-i18n*` elements under `root`. */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [source, target] of STATIC_ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[${source}]`)) el.setAttribute(target, t(el.getAttribute(source)));
  }
  document.documentElement.lang = current;
}

/** Switch the language (remembered), redraw the static text and tell every listener. */
export function setLang(next) {
  if (!MESSAGES[next]) throw new Error(`unknown language ${next}; choose from ${LANGS.join(", ")}`);
  current = next;
  localStorage.setItem(STORAGE_KEY, next);
  applyStatic();
  for (const listener of listeners) listener(next);
  return next;
}

/** Call `listener(lang)` after every language switch; returns the function that stops it. */
export function onLang(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Two digits. */
const pad = (n) => String(Math.abs(n)).padStart(2, "0");

/** "UTC+08:00" for the browser's offset at `date`. */
export function zoneLabel(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  return `UTC${offset >= 0 ? "+" : "-"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

/** Local "HH:MM:SS". */
export function clockTime(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Local "YYYY-MM-DD". */
export function isoDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The weekday of `date` in the current language ("周五", "Fri"). */
export function weekday(date) {
  return t(`weekday.${date.getDay()}`);
}

/**
 * A UTC ISO time as local "HH:MM:SS" (today) or "MM-DD HH:MM", "" when absent.
 * @param {string|undefined|null} iso
 */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  if (date.toDateString() === new Date().toDateString()) return clockTime(date);
  return `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clockTime(date).slice(0, 5)}`;
}

/** Local date, time and zone of epoch ms: "2026-12-04 02:15:09 UTC+08:00". */
export function localStamp(ms) {
  const date = new Date(ms);
  return `${isoDate(date)} ${clockTime(date)} ${zoneLabel(date)}`;
}

/** Seconds as "42s", "3m05s", "2h10m" (or 秒/分/时); "—" when unknown. */
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return t("unit.seconds", { s });
  if (s < 3600) return t("unit.minutes", { m: Math.floor(s / 60), s: pad(s % 60) });
  return t("unit.hours", { h: Math.floor(s / 3600), m: pad(Math.floor((s % 3600) / 60)) });
}

/** Metres with one decimal, or "—" when unknown. */
export function formatMetres(value) {
  return typeof value === "number" && Number.isFinite(value) ? t("unit.metres", { m: value.toFixed(1) }) : "—";
}
