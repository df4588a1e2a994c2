// What the signed-in caller may do, from GET /api/me: the role is shown in the header, and the
// page offers a control only to roles allowed to use it ("alerts": alert life-cycle actions,
// "admin": turning apps on and off). Until the answer is in, nothing that needs a permission is
// offered; the server checks every request anyway.
import { api } from "./api.js";

const ROLE_NAMES = {
  viewer: "观察员 Viewer",
  operator: "值班员 Operator",
  ingest: "数据接入 Ingest",
  admin: "管理员 Admin",
};

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
    const role = this.me.role || "";
    this.badge.textContent = ROLE_NAMES[role] || role || "公开只读 Public read";
    this.badge.title = this.me.label || "";
    this.badge.dataset.role = role || "anonymous";
    this.badge.hidden = false;
    this.onChange(this);
    return this.me;
  }
}
