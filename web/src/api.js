// The public HTTP API of the twin server, with the bearer token and one retry after sign-in.
import { askForToken, clearToken, getToken } from "./auth.js";
import { t } from "./i18n.js";

/** An HTTP error from the API: `status` is the HTTP status, `detail` the server's message. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

async function detailOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail ?? body);
  } catch {
    return response.statusText;
  }
}

/**
 * Call the API. On 401 the sign-in form asks for a token and the request is sent again.
 * @param {string} path e.g. "/api/elements?q=bund"
 * @param {{method?: string, body?: unknown}} options
 * @returns {Promise<any>} the parsed JSON body
 */
export async function api(path, { method = "GET", body } = {}) {
  for (;;) {
    const headers = { Accept: "application/json" };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      clearToken();
      await askForToken(token ? t("signin.rejected") : "");
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await detailOf(response));
    return response.status === 204 ? null : response.json();
  }
}

/**
 * An image (or other binary) from the API as an object URL for <img src>, or null when the
 * server has none (404/204). Images under /api need the bearer token, so <img> cannot load them.
 * @param {string} path e.g. "/api/alerts/ID/crop.jpg"
 */
export async function apiObjectUrl(path) {
  const token = getToken();
  const response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok || response.status === 204) return null;
  return URL.createObjectURL(await response.blob());
}

/** Query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
