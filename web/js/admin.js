// The admin's pages (the `admin` group): products and their stock, shipments by status with
// dispatch and deliver, and a payment's state.

import * as api from "./api.js";
import { requireUser } from "./guard.js";
import { badge, field, formValues, h, money, notify, problemText, show, when } from "./ui.js";

const SHIPMENT_STATUSES = ["pending", "dispatched", "delivered", "cancelled"];

function stockText(stock) {
  if (!stock) return "not stocked";
  const counters = `${stock.available} free · ${stock.reserved} reserved · ${stock.shipped} shipped`;
  return stock.shards > 1 ? `${counters} · ${stock.shards} shards` : counters;
}

async function stockOf(id) {
  const { status, body } = await api.get(`/inventory/${encodeURIComponent(id)}`);
  return status === 200 ? body : null;
}

export async function products(_params, context) {
  if (!requireUser(context, { admin: true })) return;
  const { main, query } = context;
  const cursor = query.get("cursor");
  const search = new URLSearchParams({ limit: 25, ...(cursor ? { cursor } : {}) });
  const { status, body } = await api.get(`/products?${search}`);
  if (status !== 200) {
    show(main, h("h1", {}, "Products"), h("p", { class: "error" }, problemText({ status, body })));
    return;
  }
  const stocks = await Promise.all(body.items.map((p) => stockOf(p.id)));
  const remove = async (product) => {
    if (!confirm(`Delete ${product.name}? Baskets drop it; orders already placed keep it.`)) return;
    const answer = await api.del(`/products/${product.id}`);
    notify(answer.status === 204 ? `${product.name} deleted.` : problemText(answer), answer.status === 204 ? "info" : "error");
    await products({}, context);
  };
  show(main,
    h("h1", {}, "Products"),
    h("p", {}, h("a", { class: "button primary", href: "#/admin/products/new" }, "New product")),
    h("table", { class: "lines" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Category"), h("th", {}, "Price"), h("th", {}, "Stock"), h("th", {}, ""))),
      h("tbody", {}, body.items.map((product, i) => h("tr", {},
        h("td", {}, h("a", { href: `#/admin/products/${product.id}` }, product.name)),
        h("td", {}, product.category),
        h("td", {}, money(product.price)),
        h("td", {}, stockText(stocks[i])),
        h("td", {}, h("button", { class: "link", onclick: () => remove(product) }, "Delete")))))),
    body.nextCursor && h("nav", { class: "pager" }, h("a", { href: `#/admin/products?cursor=${encodeURIComponent(body.nextCursor)}` }, "Next →")));
}

function productForm(product, onsubmit) {
  return h("form", { class: "card form", onsubmit },
    field("Name", { name: "name", required: true, maxlength: 200, value: product?.name }),
    field("Category", { name: "category", required: true, maxlength: 50, value: product?.category }),
    h("label", {}, "Description", h("textarea", { name: "description", maxlength: 2000, rows: 3 }, product?.description ?? "")),
    field("Price (in cents)", { name: "amount", type: "number", min: 1, required: true, value: product?.price.amount }),
    field("Currency", { name: "currency", required: true, pattern: "[A-Z]{3}", maxlength: 3, value: product?.price.currency ?? "USD" }),
    field("Image URL (optional)", { name: "imageUrl", type: "url", maxlength: 2048, value: product?.imageUrl }),
    h("button", { class: "primary", type: "submit" }, product ? "Save" : "Create"));
}

function productBody(form) {
  const values = formValues(form);
  return {
    name: values.name,
    category: values.category,
    description: values.description,
    price: { amount: Number(values.amount), currency: values.currency },
    ...(values.imageUrl ? { imageUrl: values.imageUrl } : {}),
  };
}

export async function newProduct(_params, context) {
  if (!requireUser(context, { admin: true })) return;
  const create = async (event) => {
    event.preventDefault();
    const answer = await api.post("/products", productBody(event.target));
    if (answer.status === 201) {
      notify(`${answer.body.name} created: set its stock below.`, "info", { keep: true });
      location.hash = `#/admin/products/${answer.body.id}`;
    } else {
      notify(problemText(answer), "error");
    }
  };
  show(context.main, h("h1", {}, "New product"), productForm(null, create));
}

export async function editProduct({ id }, context) {
  if (!requireUser(context, { admin: true })) return;
  const { main } = context;
  const [{ status, body }, stock] = await Promise.all([api.get(`/products/${encodeURIComponent(id)}`), stockOf(id)]);
  if (status !== 200) {
    show(main, h("h1", {}, "Product"), h("p", { class: "error" }, status === 404 ? "No such product." : problemText({ status, body })));
    return;
  }
  const save = async (event) => {
    event.preventDefault();
    const answer = await api.put(`/products/${id}`, productBody(event.target));
    if (answer.status === 200) notify(`Saved: version ${answer.body.version}.`);
    else if (answer.status === 409) notify("Someone changed this product meanwhile: reload it and try again.", "error");
    else notify(problemText(answer), "error");
  };
  const setStock = async (event) => {
    event.preventDefault();
    const values = formValues(event.target);
    const answer = await api.put(`/inventory/${id}`, { available: Number(values.available), shards: Number(values.shards) });
    if (answer.status === 200) {
      notify(`Stock set: ${stockText(answer.body)}.`);
      await editProduct({ id }, context);
    } else {
      notify(problemText(answer), "error");
    }
  };
  show(main,
    h("h1", {}, body.name),
    h("p", { class: "muted" }, `Version ${body.version}, changed ${when(body.updatedAt)}. `, h("a", { href: `#/products/${id}` }, "See it in the shop")),
    h("h2", {}, "Stock"),
    h("p", { class: "stock" }, stockText(stock)),
    h("form", { class: "card form inline", onsubmit: setStock },
      field("Units free to sell", { name: "available", type: "number", min: 0, required: true, value: stock?.available ?? 0 }),
      // Orders for one product queue on its stock item; a best-seller's units spread over
      // several items let its orders go through side by side.
      field("Shards", { name: "shards", type: "number", min: 1, max: 32, required: true, value: stock?.shards ?? 1,
        title: "How many items the stock is spread over: raise it for a best-seller" }),
      h("button", { class: "primary", type: "submit" }, "Set stock")),
    h("h2", {}, "Details"),
    productForm(body, save));
}

export async function shipments(_params, context) {
  if (!requireUser(context, { admin: true })) return;
  const { main, query } = context;
  const status = SHIPMENT_STATUSES.includes(query.get("status")) ? query.get("status") : "pending";
  const cursor = query.get("cursor");
  const search = new URLSearchParams({ status, limit: 25, ...(cursor ? { cursor } : {}) });
  const answer = await api.get(`/shipments?${search}`);
  if (answer.status !== 200) {
    show(main, h("h1", {}, "Shipments"), h("p", { class: "error" }, problemText(answer)));
    return;
  }
  const step = async (shipment, action) => {
    const result = await api.post(`/shipments/${shipment.orderId}/${action}`);
    if (result.status === 200) notify(`Order ${shipment.orderId}: ${result.body.status}.`);
    else if (result.status === 409) notify(`Order ${shipment.orderId} cannot be ${action === "dispatch" ? "dispatched" : "delivered"} now (it is ${shipment.status} no longer, or cancelled).`, "error");
    else notify(problemText(result), "error");
    await shipments({}, context);
  };
  const tab = (value) => h("a", { class: "chip", href: `#/admin/shipments?status=${value}`, "aria-current": value === status ? "true" : null }, value);
  show(main,
    h("h1", {}, "Shipments"),
    h("nav", { class: "chips", "aria-label": "Shipment status" }, SHIPMENT_STATUSES.map(tab)),
    answer.body.items.length === 0
      ? h("p", { class: "muted" }, `No ${status} shipments.`)
      : h("table", { class: "lines" },
          h("thead", {}, h("tr", {}, h("th", {}, "Order"), h("th", {}, "To"), h("th", {}, "Lines"), h("th", {}, "Changed"), h("th", {}, ""))),
          h("tbody", {}, answer.body.items.map((shipment) => h("tr", {},
            h("td", {}, h("a", { href: `#/orders/${shipment.orderId}` }, h("code", {}, shipment.orderId.slice(-8)))),
            h("td", {}, `${shipment.shippingAddress.name}, ${shipment.shippingAddress.city}`),
            h("td", {}, shipment.lines.map((l) => `${l.quantity} × ${l.productId.slice(-6)}`).join(", ")),
            h("td", {}, when(shipment.updatedAt)),
            h("td", {},
              shipment.status === "pending" && h("button", { class: "primary", onclick: () => step(shipment, "dispatch") }, "Dispatch"),
              shipment.status === "dispatched" && h("button", { class: "primary", onclick: () => step(shipment, "deliver") }, "Deliver"),
              h("a", { class: "small", href: `#/admin/payments?order=${shipment.orderId}` }, "Payment")))))),
    answer.body.nextCursor && h("nav", { class: "pager" },
      h("a", { href: `#/admin/shipments?status=${status}&cursor=${encodeURIComponent(answer.body.nextCursor)}` }, "Older →")));
}

export async function payment(_params, context) {
  if (!requireUser(context, { admin: true })) return;
  const { main, query } = context;
  const orderId = query.get("order") ?? "";
  const lookup = (event) => {
    event.preventDefault();
    location.hash = `#/admin/payments?order=${encodeURIComponent(formValues(event.target).order.trim())}`;
  };
  let result = null;
  if (orderId) {
    const answer = await api.get(`/payments/${encodeURIComponent(orderId)}`);
    if (answer.status === 200) {
      const p = answer.body;
      result = h("dl", { class: "card facts" },
        h("dt", {}, "Status"), h("dd", {}, badge(p.status), p.reason ? ` (${p.reason})` : ""),
        h("dt", {}, "Amount"), h("dd", {}, money(p.amount)),
        p.providerReference && [h("dt", {}, "Processor's reference"), h("dd", {}, h("code", {}, p.providerReference))],
        p.settling && [h("dt", {}, "Settling"), h("dd", {}, `asked ${p.settling.checks} time(s) since ${when(p.settling.since)}; next look ${when(p.settling.nextCheckAt)}`)],
        h("dt", {}, "Created"), h("dd", {}, when(p.createdAt)),
        h("dt", {}, "Changed"), h("dd", {}, when(p.updatedAt)));
    } else if (answer.status === 404) {
      result = h("p", { class: "muted" }, "Nothing was charged for this order (it may have been cancelled before its charge was asked for).");
    } else {
      result = h("p", { class: "error" }, problemText(answer));
    }
  }
  show(main,
    h("h1", {}, "Payment of an order"),
    h("form", { class: "card form inline", onsubmit: lookup },
      field("Order id", { name: "order", required: true, value: orderId, pattern: "[0-9A-Za-z]{26}" }),
      h("button", { class: "primary", type: "submit" }, "Look up")),
    result);
}
