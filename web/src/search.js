// The search box: debounced GET /api/elements?q=…&limit=10, a dropdown, keyboard choice. A
// camera in the results also offers its AR view.
import { api, query } from "./api.js";
import { h } from "./dom.js";
import { known, t } from "./i18n.js";

const DEBOUNCE_MS = 250;

/**
 * Wire the search input and its dropdown.
 * @param {{input: HTMLInputElement, results: HTMLElement, onChoose: (item: any) => void,
 *          onAr: (item: any) => void}} parts
 */
export function setupSearch({ input, results, onChoose, onAr }) {
  let timer = 0;
  let seq = 0;
  let items = [];
  let active = -1;

  const close = () => {
    results.hidden = true;
    results.replaceChildren();
    items = [];
    active = -1;
  };

  const choose = (item) => {
    close();
    input.value = item.name || item.id;
    input.blur();
    onChoose(item);
  };

  const highlight = (index) => {
    active = index;
    [...results.children].forEach((li, i) => li.classList.toggle("active", i === index));
  };

  const render = (found, total, more) => {
    items = found;
    active = -1;
    results.replaceChildren(
      ...found.map((item, i) =>
        h(
          "li",
          {
            role: "option",
            dataset: { elementId: item.id },
            onmousedown: (e) => (e.preventDefault(), choose(item)),
            onmouseenter: () => highlight(i),
          },
          h("span", { class: "result-name", translate: "no" }, item.name || item.id),
          item.kind === "camera"
            ? h("button", { type: "button", class: "small result-ar", dataset: { ar: item.id },
                            onmousedown: (e) => (e.preventDefault(), e.stopPropagation(), close(), onAr(item)) },
                t("camera.ar"))
            : null,
          h("span", { class: `result-kind kind-${item.kind}` }, known(`kind.${item.kind}`) ? t(`kind.${item.kind}`) : item.kind),
        ),
      ),
    );
    if (!found.length) results.append(h("li", { class: "muted empty" }, t("search.none")));
    else if (more) results.append(h("li", { class: "muted empty" }, t("search.more", { n: total })));
    else if (total > found.length) results.append(h("li", { class: "muted empty" }, t("search.total", { n: total })));
    results.hidden = false;
  };

  const run = async (text) => {
    const mine = ++seq;
    try {
      const body = await api(`/api/elements${query({ q: text, limit: 10, geometry: false })}`);
      if (mine === seq && input.value.trim() === text) render(body.items || [], body.total || 0, Boolean(body.more));
    } catch (err) {
      if (mine === seq) {
        results.replaceChildren(h("li", { class: "error empty" }, err.message));
        results.hidden = false;
      }
    }
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) return close();
    timer = setTimeout(() => run(text), DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && items.length) {
      event.preventDefault();
      highlight((active + 1) % items.length);
    } else if (event.key === "ArrowUp" && items.length) {
      event.preventDefault();
      highlight((active - 1 + items.length) % items.length);
    } else if (event.key === "Enter" && items.length) {
      event.preventDefault();
      choose(items[Math.max(active, 0)]);
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}
