// Access token of the page: from `?token=` (then kept in sessionStorage and removed from the
// address bar), or asked for with the sign-in form.

const STORAGE_KEY = "twin.token";

/** Take `?token=` from the address bar into sessionStorage and strip it from the URL. */
export function adoptUrlToken() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    sessionStorage.setItem(STORAGE_KEY, token);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

/** The current token, or "" when none was given (public-read displays). */
export function getToken() {
  return sessionStorage.getItem(STORAGE_KEY) || "";
}

export function setToken(token) {
  sessionStorage.setItem(STORAGE_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(STORAGE_KEY);
}

let pending = null;

/**
 * Show the sign-in form and resolve with the token entered. Concurrent callers share one form.
 * @param {string} message shown above the input (why we ask)
 * @returns {Promise<string>}
 */
export function askForToken(message = "") {
  if (pending) return pending;
  const modal = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const input = document.getElementById("signin-token");
  const error = document.getElementById("signin-error");
  error.textContent = message;
  error.hidden = !message;
  modal.hidden = false;
  input.value = "";
  input.focus();
  pending = new Promise((resolve) => {
    const onSubmit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      form.removeEventListener("submit", onSubmit);
      modal.hidden = true;
      setToken(token);
      pending = null;
      resolve(token);
      window.dispatchEvent(new Event("twin:token"));
    };
    form.addEventListener("submit", onSubmit);
  });
  return pending;
}
