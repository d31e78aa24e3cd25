// Small DOM helpers: the whole app is built from these, with no framework and no build step.

/** An element: h("a", {href: "#/"}, "text", child...). `on*` attributes are listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` shows. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Minor units and a currency code, as the API gives money. */
export function money(value) {
  if (!value) return "";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: value.currency })
    .format(value.amount / 100);
}

export function when(timestamp) {
  if (!timestamp) return "";
  return new Date(timestamp).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const STATUS_WORDS = {
  submitted: "Submitted",
  stock_confirmed: "Stock reserved",
  paid: "Paid",
  cancelling: "Cancelling",
  cancelled: "Cancelled",
  shipped: "Shipped",
  delivered: "Delivered",
  pending: "Pending",
  dispatched: "Dispatched",
  succeeded: "Succeeded",
  failed: "Failed",
  refunded: "Refunded",
};

const REASON_WORDS = {
  out_of_stock: "not enough stock",
  payment_failed: "the card was declined",
  provider_unavailable: "the payment provider could not be reached",
  customer_request: "you asked to cancel",
};

export function statusWord(status) {
  return STATUS_WORDS[status] ?? status;
}

export function reasonWords(reason) {
  return REASON_WORDS[reason] ?? reason;
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, statusWord(status));
}

/**
 * The notice line under the header: what just happened, or what went wrong. A notice given
 * with `{ keep: true }` survives the next change of page (the one the action leads to).
 */
export function notify(message, kind = "info", { keep = false } = {}) {
  const notice = document.getElementById("notice");
  notice.dataset.keep = keep ? "once" : "";
  show(notice, message ? h("p", { class: `notice notice-${kind}` }, message) : null);
}

/** On a change of page: the notice goes, unless it was kept for this change. */
export function pageChanged() {
  const notice = document.getElementById("notice");
  if (notice.dataset.keep === "once") notice.dataset.keep = "";
  else show(notice);
}

/** A problem+json answer (or a gateway's `{"message"}`) in words a person can act on. */
export function problemText(answer) {
  const body = answer?.body ?? {};
  const fields = (body.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
  const what = body.detail ?? body.message ?? body.title ?? `HTTP ${answer?.status}`;
  return fields ? `${what} (${fields})` : what;
}

/** A labelled input for forms. */
export function field(label, attributes) {
  return h("label", {}, label, h("input", attributes));
}

/** Form values by input name. */
export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}
