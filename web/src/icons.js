// Map icons drawn once on canvases (no image files, crisp at any size): a round badge per live
// entity class with a glyph and a heading wedge, and the diamond of an alert by severity.
// Sizes are CSS px at scale 1; `scale` (the wall's text scale) multiplies them.

/** Colour of each entity class on the map (and its legend). */
export const CLASS_COLOURS = {
  person: "#ffb020",
  car: "#38d6ff",
  bus: "#4c8dff",
  truck: "#c38bff",
  bicycle: "#7cf0c8",
  plate: "#ff5ad1",
  object: "#d77bff",
  environment: "#6be58f",
};

export const SEVERITY_COLOURS = { critical: "#ff4d55", warning: "#ffb020", info: "#38d6ff" };

/** The icon class of a live entity payload (kind, detector class, plate read). */
export function iconClass(payload) {
  const attributes = payload.attributes || {};
  if (payload.kind === "person") return "person";
  if (payload.kind === "environment") return "environment";
  if (payload.kind === "vehicle") {
    if (attributes.plate_masked) return "plate";
    if (["bus", "truck", "bicycle"].includes(payload.cls)) return payload.cls;
    if (payload.cls === "motorcycle") return "bicycle";
    return "car";
  }
  return "object";
}

const GLYPHS = {
  person: (g) => {
    g.beginPath();
    g.arc(0, -5, 3.2, 0, 2 * Math.PI);
    g.fill();
    g.beginPath();
    g.moveTo(-5, 7);
    g.quadraticCurveTo(0, -4, 5, 7);
    g.closePath();
    g.fill();
  },
  car: (g) => roundRect(g, -4.5, -7, 9, 14, 3),
  plate: (g) => {
    roundRect(g, -4.5, -7, 9, 14, 3);
    g.fillStyle = "#05080f";
    g.fillRect(-3.5, 2.5, 7, 2.5);
  },
  bus: (g) => roundRect(g, -4.5, -8.5, 9, 17, 1.5),
  truck: (g) => {
    roundRect(g, -4.5, -8.5, 9, 5, 1.5);
    roundRect(g, -4.5, -2.5, 9, 11, 1);
  },
  bicycle: (g) => {
    g.lineWidth = 2;
    g.beginPath();
    g.arc(-3.5, 3, 3, 0, 2 * Math.PI);
    g.arc(3.5, 3, 3, 0, 2 * Math.PI);
    g.stroke();
    g.fillRect(-1, -7, 2, 8);
  },
  object: (g) => g.fillRect(-4.5, -4.5, 9, 9),
  environment: (g) => {
    g.beginPath();
    g.moveTo(0, -7);
    g.bezierCurveTo(6, 0, 5, 7, 0, 7);
    g.bezierCurveTo(-5, 7, -6, 0, 0, -7);
    g.fill();
  },
};

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.roundRect(x, y, w, h, r);
  g.fill();
}

const cache = new Map();

/**
 * A canvas with the badge of `cls` (a key of CLASS_COLOURS): a dark disc ringed in the class
 * colour, the glyph in the middle and, unless `still`, a wedge on the ring pointing up (the
 * billboard turns it to the heading).
 * @param {string} cls
 * @param {{scale?: number, still?: boolean}} options
 */
export function entityIcon(cls, { scale = 1, still = false } = {}) {
  const key = `${cls}:${scale}:${still}`;
  if (cache.has(key)) return cache.get(key);
  const size = Math.round(30 * scale);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const g = canvas.getContext("2d");
  const colour = CLASS_COLOURS[cls] || "#ffffff";
  g.translate(size / 2, size / 2);
  g.scale(scale, scale);
  if (!still) {
    g.fillStyle = colour;
    g.beginPath();
    g.moveTo(0, -15);
    g.lineTo(5, -9);
    g.lineTo(-5, -9);
    g.closePath();
    g.fill();
  }
  g.fillStyle = "rgba(5, 8, 15, 0.85)";
  g.strokeStyle = colour;
  g.lineWidth = 2.5;
  g.beginPath();
  g.arc(0, 0, 10, 0, 2 * Math.PI);
  g.fill();
  g.stroke();
  g.fillStyle = colour;
  g.strokeStyle = colour;
  GLYPHS[cls in GLYPHS ? cls : "object"](g);
  cache.set(key, canvas);
  return canvas;
}
