// What a page shows instead of itself to someone who may not see it. The API refuses them
// anyway (401/403); this only saves them a page of errors.

import * as auth from "./auth.js";
import { h, show } from "./ui.js";

/** Answers whether the page may go on; if not, says why in <main>. */
export function requireUser(context, { admin = false } = {}) {
  if (!context.user) {
    show(context.main, h("h1", {}, "Sign in first"),
      h("p", {}, "This page is for signed-in customers."),
      h("button", { class: "primary", onclick: () => auth.signIn() }, "Sign in"));
    return false;
  }
  if (admin && !context.user.admin) {
    show(context.main, h("h1", {}, "Administrators only"),
      h("p", {}, "Your account is not in the admin group."));
    return false;
  }
  return true;
}
