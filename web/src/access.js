// What the signed-in caller may do, from GET /api/me: the role is shown in the header, and the
// page offers a control only to roles allowed to use it ("alerts": alert life-cycle actions,
// "admin": turning apps on and off). Until the answer is in, nothing that needs a permission is
// offered; the server checks every request anyway.
import { api } from "./api.js";
import { known, t } from "./i18n.js";

export class Access {
  /**
   * @param {{badge: HTMLElement, onChange: (access: Access) => void}} parts
   *   `badge` shows the role; `onChange` runs whenever what the caller may do is (re)loaded.
   */
  constructor({ badge, onChange }) {
    this.badge = badge;
    this.onChange = onChange;
    this.me = null;
  }

  /** Whether the caller's role has `permission` ("read", "alerts", "ingest", "admin"). */
  can(permission) {
    return Boolean(this.me && (this.me.permissions || []).includes(permission));
  }

  /** Ask GET /api/me (signing in first when the server wants a token) and apply the answer. */
  async load() {
    this.me = await api("/api/me");
    this.render();
    this.onChange(this);
    return this.me;
  }

  /** The role badge in the current language. */
  render() {
    if (!this.me) return;
    const role = this.me.role || "";
    this.badge.textContent = role ? (known(`role.${role}`) ? t(`role.${role}`) : role) : t("role.public");
    this.badge.title = this.me.label || "";
    this.badge.dataset.role = role || "anonymous";
    this.badge.hidden = false;
  }
}
