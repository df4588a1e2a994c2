// Camera frames: GET /api/cameras/{id}/frame polled while someone watches, drawn into one
// canvas per camera that the AR view shows and the video projection uses as its texture.
import { getToken } from "./auth.js";

const POLL_MS = 1000;
const RETRY_MS = 5000;

/** The newest frame of one camera, in `canvas` (the image's own size, px). */
export class FrameFeed {
  constructor(cameraId, { pollMs = POLL_MS } = {}) {
    this.cameraId = cameraId;
    this.pollMs = pollMs;
    this.canvas = document.createElement("canvas");
    this.canvas.width = 2;
    this.canvas.height = 2;
    this.etag = null;
    this.hasFrame = false;
    this.frames = 0;
    this.listeners = new Set();
    this.timer = 0;
    this.running = false;
  }

  /** Call `listener(feed)` after each new frame; returns the function that stops listening. */
  subscribe(listener) {
    this.listeners.add(listener);
    if (!this.running) this.start();
    else if (this.hasFrame) listener(this);
    return () => {
      this.listeners.delete(listener);
      if (!this.listeners.size) this.stop();
    };
  }

  start() {
    this.running = true;
    this.poll();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Fetch now; resolves true when a new frame was drawn. */
  async refresh() {
    const headers = {};
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (this.etag) headers["If-None-Match"] = this.etag;
    const response = await fetch(`/api/cameras/${encodeURIComponent(this.cameraId)}/frame`, {
      headers,
      cache: "no-store",
    });
    // 204: the camera has no frame yet; 304: the frame we hold is the newest.
    if (response.status === 204 || response.status === 304 || !response.ok) return false;
    const bitmap = await createImageBitmap(await response.blob());
    this.canvas.width = bitmap.width;
    this.canvas.height = bitmap.height;
    this.canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    this.etag = response.headers.get("ETag");
    this.hasFrame = true;
    this.frames += 1;
    for (const listener of this.listeners) listener(this);
    return true;
  }

  async poll() {
    let wait = this.pollMs;
    try {
      await this.refresh();
      if (!this.hasFrame) wait = RETRY_MS;
    } catch {
      wait = RETRY_MS;
    }
    if (this.running) this.timer = setTimeout(() => this.poll(), wait);
  }
}

/** One FrameFeed per camera id, made on first use. */
export class FrameFeeds {
  constructor() {
    this.feeds = new Map();
  }

  get(cameraId) {
    let feed = this.feeds.get(cameraId);
    if (!feed) {
      feed = new FrameFeed(cameraId);
      this.feeds.set(cameraId, feed);
    }
    return feed;
  }
}
