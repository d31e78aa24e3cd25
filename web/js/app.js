// The app: reads config.json, finishes a sign-in if one is returning, and shows the page
// the address's hash names. Pages are functions of the route's parameters that fill <main>
// and may return a function that stops what they started (polling, a live feed).

import * as auth from "./auth.js";
import * as api from "./api.js";
import * as live from "./live.js";
import { h, notify, pageChanged, show } from "./ui.js";
import * as shop from "./shop.js";
import * as admin from "./admin.js";
import * as ops from "./ops.js";

const routes = [
  ["/", shop.catalog],
  ["/products/:id", shop.product],
  ["/basket", shop.basket],
  ["/checkout", shop.checkout],
  ["/orders", shop.orders],
  ["/orders/:id", shop.order],
  ["/admin/products", admin.products],
  ["/admin/products/new", admin.newProduct],
  ["/admin/products/:id", admin.editProduct],
  ["/admin/shipments", admin.shipments],
  ["/admin/payments", admin.payment],
  ["/ops", ops.operations],
];

let config;
let stopPage = null;

function match(path) {
  const parts = path.split("/").filter(Boolean);
  for (const [pattern, page] of routes) {
    const wanted = pattern.split("/").filter(Boolean);
    if (wanted.length !== parts.length) continue;
    const params = {};
    if (wanted.every((piece, i) => (piece.startsWith(":") ? (params[piece.slice(1)] = decodeURIComponent(parts[i])) : piece === parts[i]))) {
      return { page, params };
    }
  }
  return null;
}

function navigation() {
  const user = auth.user();
  const link = (href, text) => h("a", { href, "aria-current": location.hash === href ? "page" : null }, text);
  return [
    link("#/", "Catalog"),
    user && link("#/basket", "Basket"),
    user && link("#/orders", "Orders"),
    user?.admin && link("#/admin/products", "Products"),
    user?.admin && link("#/admin/shipments", "Shipments"),
    user?.admin && link("#/admin/payments", "Payments"),
    config.operations && link("#/ops", "Operations"),
    user
      ? h("span", { class: "who" }, h("span", { class: "muted" }, user.name, user.admin ? " (admin)" : ""),
          h("button", { class: "link", onclick: () => auth.signOut() }, "Sign out"))
      : h("button", { class: "primary", onclick: () => auth.signIn() }, "Sign in"),
  ];
}

let shownGeneration = 0;

async function render() {
  if (stopPage) stopPage();
  stopPage = null;
  const generation = ++shownGeneration;
  const hash = location.hash || "#/";
  // Set again once this page is shown: what tests (and anyone scripting the app) wait for.
  delete document.body.dataset.shown;
  const [path, search] = hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(search ?? "");
  show(document.getElementById("nav"), navigation());
  // Each page draws into a view of its own: a page still loading when the address changes
  // draws into a view nobody sees any more, never over the next page.
  const main = h("div", { class: "view" });
  show(document.getElementById("main"), main);
  const found = match(path || "/");
  if (!found) {
    show(main, h("h1", {}, "Not here"), h("p", {}, "No page has this address. ", h("a", { href: "#/" }, "Back to the catalog.")));
  } else {
    const context = { config, query, user: auth.user(), main };
    try {
      const stop = (await found.page(found.params, context)) ?? null;
      if (generation === shownGeneration) stopPage = stop;
      else if (stop) stop();
    } catch (error) {
      show(main, h("h1", {}, "Something went wrong"), h("p", {}, String(error.message ?? error)));
    }
  }
  if (generation === shownGeneration) document.body.dataset.shown = hash;
}

async function start() {
  const response = await fetch("/config.json");
  config = await response.json();
  auth.configure(config);
  api.configure(config);
  live.configure(config);
  try {
    const returnTo = await auth.completeSignIn();
    if (returnTo) notify(`Signed in as ${auth.user()?.name}.`);
  } catch (error) {
    notify(error.message, "error");
  }
  window.addEventListener("hashchange", () => {
    pageChanged();
    render();
  });
  await render();
}

start();
