// Feed health in the status bar: polls GET /readyz (open; with the token it names the stale
// feeds) and shows how many cameras and sensors sent nothing for TWIN_FEED_STALE_S, with
// their ids on hover; a failed store or bus check shows in red. Hidden while all is well.
// Loaded by index.html on its own: it starts on the page's #readiness element.
import { getToken } from "./auth.js";
import { onLang, t } from "./i18n.js";

const POLL_MS = 15_000;

/** Text and tooltip for a /readyz body; null when there is nothing to show. */
export function readinessNote(body) {
  const failed = ["store", "bus"].filter((name) => body[name] && body[name].status === "fail");
  if (failed.length) {
    return {
      level: "fail",
      text: t("readiness.notReady", { parts: failed.join(", ") }),
      title: failed.map((name) => `${name}: ${body[name].detail}`).join("\n"),
    };
  }
  const feeds = body.feeds || {};
  if (!feeds.stale_count) return null;
  return {
    level: "stale",
    text: t("readiness.stale", { n: feeds.stale_count, total: feeds.total }),
    title: `${(feeds.stale || []).join("\n")}\n${t("readiness.after", { s: feeds.stale_after_s })}`,
  };
}

/** Keep `element` showing the server's readiness; returns a function that stops polling. */
export function watchReadiness(element, { intervalMs = POLL_MS } = {}) {
  let last; // the last /readyz body (null: no answer), shown again after a language switch
  async function poll() {
    // The page may not have taken ?token= into its storage yet when the first poll goes.
    const token = getToken() || new URL(window.location.href).searchParams.get("token");
    try {
      const response = await fetch("/readyz", {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      last = await response.json();
    } catch {
      last = null;
    }
    render();
  }
  function render() {
    if (last === undefined) return;
    show(last ? readinessNote(last) : { level: "fail", text: t("readiness.noAnswer"), title: "/readyz" });
  }
  function show(note) {
    element.hidden = note === null;
    element.textContent = note ? note.text : "";
    element.title = note ? note.title : "";
    element.dataset.level = note ? note.level : "ok";
    element.style.color = note && note.level === "fail" ? "var(--danger)" : "var(--warn)";
  }
  poll();
  onLang(render);
  const timer = setInterval(poll, intervalMs);
  return () => clearInterval(timer);
}

const element = document.getElementById("readiness");
if (element) watchReadiness(element);
