// The shopper's pages: catalog, product, basket, checkout, orders, and an order's timeline.

import * as api from "./api.js";
import * as auth from "./auth.js";
import * as live from "./live.js";
import { requireUser } from "./guard.js";
import { badge, field, formValues, h, money, notify, problemText, reasonWords, show, statusWord, when } from "./ui.js";

const PAGE_SIZE = 12;
/** Where an order's life goes when nothing goes wrong (DESIGN §3). */
const HAPPY_PATH = ["submitted", "stock_confirmed", "paid", "shipped", "delivered"];
const FINAL = new Set(["delivered", "cancelled"]);
const CANCELLABLE = new Set(["submitted", "stock_confirmed", "paid"]);
/** How often an open order page asks for news while the order is still moving and no live
 * updates come (the socket is closed, or reconnecting). */
const ORDER_POLL_MS = 1500;
/** The order this tab just placed: its 404 means "not recorded yet", anyone else's "not yours". */
const JUST_PLACED = "shop.justPlaced";

let categories = null;

async function knownCategories() {
  if (categories) return categories;
  const { status, body } = await api.get("/products?limit=100");
  categories = status === 200 ? [...new Set(body.items.map((p) => p.category))].sort() : [];
  return categories;
}

/** Puts one more of `product` in the caller's basket. */
async function addOne(productId, name) {
  const basket = await api.get("/basket");
  const line = basket.body?.items?.find((item) => item.productId === productId);
  const quantity = (line?.quantity ?? 0) + 1;
  const { status, body } = await api.put(`/basket/items/${encodeURIComponent(productId)}`, { quantity });
  if (status === 200) {
    notify(`${name}: ${quantity} in your basket.`);
  } else if (status === 404) {
    notify(`${name} is still on its way to the basket (it was added to the catalog a moment ago); try again in a second.`, "error");
  } else {
    notify(problemText({ status, body }), "error");
  }
}

function productCard(product, user) {
  return h("article", { class: "card product" },
    h("h3", {}, h("a", { href: `#/products/${product.id}` }, product.name)),
    h("p", { class: "muted" }, product.category),
    h("p", { class: "price" }, money(product.price)),
    user
      ? h("button", { class: "primary", onclick: () => addOne(product.id, product.name) }, "Add to basket")
      : h("button", { onclick: () => auth.signIn() }, "Sign in to buy"));
}

export async function catalog(_params, { query, user, main }) {
  const category = query.get("category") ?? "";
  const cursor = query.get("cursor") ?? "";
  const search = new URLSearchParams({ limit: PAGE_SIZE });
  if (category) search.set("category", category);
  if (cursor) search.set("cursor", cursor);
  const [{ status, body }, all] = await Promise.all([api.get(`/products?${search}`), knownCategories()]);
  if (status !== 200) {
    show(main, h("h1", {}, "Catalog"), h("p", { class: "error" }, problemText({ status, body })));
    return;
  }
  const chip = (value, text) => h("a", {
    class: "chip", href: value ? `#/?category=${encodeURIComponent(value)}` : "#/",
    "aria-current": value === category ? "true" : null,
  }, text);
  const next = body.nextCursor
    ? new URLSearchParams({ ...(category ? { category } : {}), cursor: body.nextCursor })
    : null;
  show(main,
    h("h1", {}, category ? `Catalog: ${category}` : "Catalog"),
    h("nav", { class: "chips", "aria-label": "Categories" }, chip("", "Everything"), all.map((c) => chip(c, c))),
    body.items.length
      ? h("div", { class: "grid" }, body.items.map((product) => productCard(product, user)))
      : h("p", { class: "muted" }, "Nothing here yet."),
    h("nav", { class: "pager", "aria-label": "Pages" },
      cursor && h("button", { class: "link", onclick: () => history.back() }, "← Previous"),
      next && h("a", { href: `#/?${next}` }, "Next →")));
}

export async function product({ id }, { user, main }) {
  const { status, body } = await api.get(`/products/${encodeURIComponent(id)}`);
  if (status === 404) {
    show(main, h("h1", {}, "No such product"), h("p", {}, "It may have been removed. ", h("a", { href: "#/" }, "Back to the catalog.")));
    return;
  }
  if (status !== 200) {
    show(main, h("p", { class: "error" }, problemText({ status, body })));
    return;
  }
  const put = async (event) => {
    event.preventDefault();
    const quantity = Number(formValues(event.target).quantity);
    const answer = await api.put(`/basket/items/${encodeURIComponent(id)}`, { quantity });
    if (answer.status === 200) notify(`${body.name}: ${quantity} in your basket.`);
    else if (answer.status === 404) notify(`${body.name} is still on its way to the basket; try again in a second.`, "error");
    else notify(problemText(answer), "error");
  };
  show(main,
    h("p", {}, h("a", { href: `#/?category=${encodeURIComponent(body.category)}` }, `← ${body.category}`)),
    h("article", { class: "card detail" },
      body.imageUrl && h("img", { src: body.imageUrl, alt: body.name, class: "photo" }),
      h("h1", {}, body.name),
      h("p", { class: "price" }, money(body.price)),
      h("p", { class: "description" }, body.description || ""),
      user
        ? h("form", { class: "inline", onsubmit: put },
            field("Quantity", { type: "number", name: "quantity", min: 1, max: 99, value: 1, required: true }),
            h("button", { class: "primary", type: "submit" }, "Put in basket"))
        : h("button", { class: "primary", onclick: () => auth.signIn() }, "Sign in to buy"),
      user?.admin && h("p", {}, h("a", { href: `#/admin/products/${id}` }, "Edit this product"))));
}

export async function basket(_params, context) {
  if (!requireUser(context)) return;
  const { main } = context;
  const { status, body } = await api.get("/basket");
  if (status !== 200) {
    show(main, h("h1", {}, "Basket"), h("p", { class: "error" }, problemText({ status, body })));
    return;
  }
  const change = async (productId, quantity) => {
    const answer = quantity > 0
      ? await api.put(`/basket/items/${encodeURIComponent(productId)}`, { quantity })
      : await api.del(`/basket/items/${encodeURIComponent(productId)}`);
    if (answer.status !== 200) notify(problemText(answer), "error");
    await basket({}, context);
  };
  show(main,
    h("h1", {}, "Basket"),
    body.items.length === 0
      ? h("p", { class: "muted" }, "Your basket is empty. ", h("a", { href: "#/" }, "Browse the catalog."))
      : [
          h("table", { class: "lines" },
            h("thead", {}, h("tr", {}, h("th", {}, "Product"), h("th", {}, "Price"), h("th", {}, "Quantity"), h("th", {}, ""))),
            h("tbody", {}, body.items.map((item) => h("tr", {},
              h("td", {}, h("a", { href: `#/products/${item.productId}` }, item.name)),
              h("td", {}, money(item.unitPrice)),
              h("td", {}, h("input", {
                type: "number", min: 1, max: 99, value: item.quantity, "aria-label": `Quantity of ${item.name}`,
                onchange: (e) => change(item.productId, Number(e.target.value)),
              })),
              h("td", {}, h("button", { class: "link", onclick: () => change(item.productId, 0) }, "Remove")))))),
          h("p", { class: "total" }, "Total ", h("strong", {}, money(body.total))),
          h("p", {}, h("a", { class: "button primary", href: "#/checkout" }, "Check out")),
        ]);
}

/** The checkout's idempotency key: one per intended order, kept across retries of it. */
function checkoutKey() {
  let key = sessionStorage.getItem("shop.checkoutKey");
  if (!key) {
    key = crypto.randomUUID();
    sessionStorage.setItem("shop.checkoutKey", key);
  }
  return key;
}

const TEST_CARDS = [
  ["tok_visa", "Test card: approved"],
  ["tok_decline_insufficient_funds", "Test card: declined (insufficient funds)"],
];

export async function checkout(_params, context) {
  if (!requireUser(context)) return;
  const { main, config } = context;
  const { status, body } = await api.get("/basket");
  if (status !== 200 || body.items.length === 0) {
    show(main, h("h1", {}, "Checkout"), h("p", {}, "Your basket is empty. ", h("a", { href: "#/" }, "Browse the catalog.")));
    return;
  }
  const submit = async (event) => {
    event.preventDefault();
    const button = event.target.querySelector("button[type=submit]");
    button.disabled = true;
    const values = formValues(event.target);
    const order = {
      shippingAddress: {
        name: values.name, line1: values.line1, city: values.city,
        postalCode: values.postalCode, country: values.country.toUpperCase(),
        ...(values.line2 ? { line2: values.line2 } : {}),
      },
      paymentToken: values.paymentToken,
    };
    const answer = await api.post("/basket/checkout", order, { "idempotency-key": checkoutKey() });
    button.disabled = false;
    if (answer.status === 202) {
      sessionStorage.removeItem("shop.checkoutKey");
      sessionStorage.setItem(JUST_PLACED, answer.body.orderId);
      location.hash = `#/orders/${answer.body.orderId}`;
    } else if (answer.status === 409) {
      notify("These lines are already on their way to an order.", "error");
    } else {
      notify(problemText(answer), "error");
    }
  };
  show(main,
    h("h1", {}, "Checkout"),
    h("p", {}, `${body.items.length} product${body.items.length > 1 ? "s" : ""}, `, h("strong", {}, money(body.total)), "."),
    h("form", { class: "card form", onsubmit: submit },
      h("fieldset", {}, h("legend", {}, "Shipping address"),
        field("Name", { name: "name", required: true, maxlength: 100, autocomplete: "name" }),
        field("Address", { name: "line1", required: true, maxlength: 200, autocomplete: "address-line1" }),
        field("Address, second line (optional)", { name: "line2", maxlength: 200, autocomplete: "address-line2" }),
        field("City", { name: "city", required: true, maxlength: 100, autocomplete: "address-level2" }),
        field("Postal code", { name: "postalCode", required: true, maxlength: 20, autocomplete: "postal-code" }),
        field("Country (two letters, e.g. GB)", { name: "country", required: true, pattern: "[A-Za-z]{2}", maxlength: 2, autocomplete: "country" })),
      h("fieldset", {}, h("legend", {}, "Payment"),
        config.sandboxPayments
          ? [h("p", { class: "muted" }, "The shop charges through its sandbox card processor: pick a test card."),
              TEST_CARDS.map(([token, label], i) => h("label", { class: "check" },
                h("input", { type: "radio", name: "paymentToken", value: token, checked: i === 0, required: true }), label))]
          : field("Payment token from the card processor", { name: "paymentToken", required: true, maxlength: 200 })),
      h("button", { class: "primary", type: "submit" }, "Place order")));
}

export async function orders(_params, context) {
  if (!requireUser(context)) return;
  const { main, query } = context;
  const cursor = query.get("cursor");
  const search = new URLSearchParams({ limit: 20, ...(cursor ? { cursor } : {}) });
  const { status, body } = await api.get(`/orders?${search}`);
  if (status !== 200) {
    show(main, h("h1", {}, "Orders"), h("p", { class: "error" }, problemText({ status, body })));
    return;
  }
  show(main,
    h("h1", {}, "Your orders"),
    body.items.length === 0
      ? h("p", { class: "muted" }, "No orders yet.")
      : h("table", { class: "lines" },
          h("thead", {}, h("tr", {}, h("th", {}, "Placed"), h("th", {}, "Status"), h("th", {}, "Total"), h("th", {}, ""))),
          h("tbody", {}, body.items.map((order) => h("tr", {},
            h("td", {}, when(order.createdAt)),
            h("td", {}, badge(order.status)),
            h("td", {}, money(order.total)),
            h("td", {}, h("a", { href: `#/orders/${order.id}` }, "Details")))))),
    body.nextCursor && h("nav", { class: "pager" }, h("a", { href: `#/orders?cursor=${encodeURIComponent(body.nextCursor)}` }, "Older →")));
}

function timeline(order) {
  const seen = new Map(order.statusHistory.map((step) => [step.status, step]));
  const steps = order.statusHistory.map((step) => h("li", { class: `step done step-${step.status}` },
    h("span", { class: "what" }, statusWord(step.status)),
    h("time", { datetime: step.at }, when(step.at)),
    step.reason && h("span", { class: "why" }, reasonWords(step.reason))));
  const upcoming = FINAL.has(order.status) || order.status === "cancelling"
    ? []
    : HAPPY_PATH.filter((status) => !seen.has(status))
        .map((status) => h("li", { class: "step upcoming" }, h("span", { class: "what" }, statusWord(status))));
  return h("ol", { class: "timeline", "aria-label": "Order status" }, steps, upcoming);
}

function orderView(order, context, refresh) {
  const cancel = async () => {
    if (!confirm("Cancel this order? A payment already made is refunded.")) return;
    const answer = await api.post(`/orders/${order.id}/cancel`);
    if (answer.status === 202 || answer.status === 200) {
      notify(answer.body.status === "cancelling"
        ? "Cancellation asked: the parcel is being stopped, and the payment will be refunded."
        : "Order cancelled.");
    } else if (answer.status === 409) {
      notify("Too late to cancel: the order has shipped.", "error");
    } else {
      notify(problemText(answer), "error");
    }
    await refresh();
  };
  const address = order.shippingAddress;
  return [
    h("h1", {}, "Order ", h("code", {}, order.id)),
    h("p", { class: "status-line" }, badge(order.status),
      order.cancellationReason && h("span", { class: "why" }, ` Cancelled because ${reasonWords(order.cancellationReason)}.`)),
    timeline(order),
    CANCELLABLE.has(order.status) && order.userId === context.user.id &&
      h("button", { class: "danger", onclick: cancel }, "Cancel order"),
    h("h2", {}, "Lines"),
    h("table", { class: "lines" },
      h("tbody", {}, order.lines.map((line) => h("tr", {},
        h("td", {}, line.name), h("td", {}, `${line.quantity} × ${money(line.unitPrice)}`)))),
      h("tfoot", {}, h("tr", {}, h("th", {}, "Total"), h("th", {}, money(order.total))))),
    h("h2", {}, "Shipping to"),
    h("address", {}, [address.name, address.line1, address.line2, `${address.postalCode} ${address.city}`, address.country]
      .filter(Boolean).flatMap((line, i) => (i ? [h("br"), line] : [line]))),
  ];
}

export async function order({ id }, context) {
  if (!requireUser(context)) return;
  const { main } = context;
  let stopped = false;
  let timer = null;
  let waitedMs = 0;
  let current = null;
  let liveOpen = false;
  let stopLive = () => {};
  // A final order changes no more: its socket would only cost connection minutes.
  const draw = () => {
    show(main, orderView(current, context, refresh));
    if (FINAL.has(current.status)) stopLive();
  };
  // Polls only while no live updates come.
  const pollLater = () => {
    clearTimeout(timer);
    if (!stopped && !liveOpen && !(current && FINAL.has(current.status))) timer = setTimeout(refresh, ORDER_POLL_MS);
  };
  const refresh = async () => {
    clearTimeout(timer);
    if (stopped) return;
    const { status, body } = await api.get(`/orders/${encodeURIComponent(id)}`);
    if (stopped) return;
    if (status === 404 && sessionStorage.getItem(JUST_PLACED) !== id) {
      show(main, h("h1", {}, "No such order"),
        h("p", {}, "There is no order of yours with this number. ", h("a", { href: "#/orders" }, "Your orders.")));
      return;
    }
    if (status === 404) {
      // Ordering records the order a moment after the checkout answered; its first
      // update (submitted) comes over the socket, or the next poll finds it.
      waitedMs += ORDER_POLL_MS;
      show(main, h("h1", {}, "Your order is being created"),
        h("p", { class: "muted" }, waitedMs < 60_000
          ? "The shop has your checkout and is recording the order; this page follows it."
          : "This is taking longer than it should. The order is not lost: look again in a while, or check your orders."),
        h("div", { class: "spinner", "aria-hidden": "true" }));
      if (waitedMs < 5 * 60_000) timer = setTimeout(refresh, ORDER_POLL_MS);
      return;
    }
    if (status !== 200) {
      show(main, h("p", { class: "error" }, problemText({ status, body })));
      return;
    }
    waitedMs = 0;
    // An update pushed while this read was under way may be newer than what it read.
    current = current ? { ...body, statusHistory: current.statusHistory.reduce(live.merged, body.statusHistory) } : body;
    current.status = current.statusHistory.at(-1)?.status ?? body.status;
    draw();
    pollLater();
  };
  stopLive = live.follow({
    onState: (open) => {
      liveOpen = open;
      // Just opened: read once what may have happened before the socket was there.
      if (open) refresh();
      else pollLater();
    },
    onUpdate: (update) => {
      if (update.orderId !== id) return;
      if (!current) {
        refresh();
        return;
      }
      const statusHistory = live.merged(current.statusHistory, update);
      const latest = statusHistory.at(-1);
      current = { ...current, statusHistory, status: latest.status, updatedAt: latest.at };
      if (latest.status === "cancelled" && latest.reason) current.cancellationReason = latest.reason;
      draw();
    },
  });
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    stopLive();
  };
}
