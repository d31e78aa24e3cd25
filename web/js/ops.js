// The operations view: every order's status as it changes (the notifications WebSocket
// API, for an admin, here and on AWS), and, with shop-local (its /_local endpoints), the
// events crossing the bus as they cross it, each function's figures, and the dead-letter
// queues with redrive.

import * as live from "./live.js";
import { badge, h, notify, show, when } from "./ui.js";

const KEPT_EVENTS = 200;
const STATS_EVERY_MS = 3000;

function eventRow(event) {
  const data = event.detail?.data ?? {};
  const subject = data.orderId ?? data.productId ?? "";
  return h("tr", {},
    h("td", {}, h("time", {}, (event.time ?? event.detail?.metadata?.occurredAt ?? "").slice(11, 23))),
    h("td", {}, event.source),
    h("td", {}, h("strong", {}, event["detail-type"])),
    h("td", {}, h("code", {}, subject.slice(-8))),
    h("td", { class: "muted" }, data.status ?? data.reason ?? ""));
}

/** Follows the NDJSON event feed until `signal` aborts; newest first in `body`. */
async function follow(body, signal) {
  const response = await fetch("/_local/events", { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    const lines = buffered.split("\n");
    buffered = lines.pop();
    for (const line of lines.filter((l) => l.trim())) {
      const event = JSON.parse(line);
      if (event.dropped) continue;
      body.querySelector(".waiting")?.remove();
      body.prepend(eventRow(event));
      while (body.children.length > KEPT_EVENTS) body.lastChild.remove();
    }
  }
}

function percentile(value) {
  return value === undefined || value === null ? "" : `${Number(value).toFixed(1)}`;
}

function functionsTable(stats) {
  return h("table", { class: "lines compact" },
    h("thead", {}, h("tr", {}, ["Function", "Calls", "Cold", "Errors", "p50 ms", "p99 ms", "Peak RSS MB"].map((t) => h("th", {}, t)))),
    h("tbody", {}, stats.functions.map((f) => h("tr", {},
      h("td", {}, f.binary),
      h("td", {}, f.invocations ?? 0),
      h("td", {}, f.coldStarts ?? 0),
      h("td", { class: f.errors ? "error" : "" }, f.errors ?? 0),
      h("td", {}, percentile(f.durationMs?.p50)),
      h("td", {}, percentile(f.durationMs?.p99)),
      h("td", {}, f.peakRssBytes ? (f.peakRssBytes / 1048576).toFixed(1) : "")))));
}

async function deadLetters(container) {
  const response = await fetch("/_local/dlq");
  const queues = await response.json();
  if (!response.ok) {
    show(container, h("p", { class: "error" }, queues.message));
    return;
  }
  const redrive = async (queue) => {
    const answer = await fetch(`/_local/dlq/${queue}/redrive`, { method: "POST" });
    const done = await answer.json();
    notify(answer.ok ? done.map((d) => `${d.queue}: ${d.moved} back to ${d.to}`).join("; ") : done.message, answer.ok ? "info" : "error");
    await deadLetters(container);
  };
  show(container, h("table", { class: "lines compact" },
    h("thead", {}, h("tr", {}, h("th", {}, "Queue"), h("th", {}, "Messages"), h("th", {}, ""))),
    h("tbody", {}, queues.map((q) => h("tr", {},
      h("td", {}, q.queue),
      h("td", {}, q.messages.length === 0 ? "empty" : h("ul", { class: "plain" }, q.messages.map((m) => h("li", {}, m.summary, ` (received ${m.receives}×)`)))),
      h("td", {}, q.messages.length > 0 && h("button", { onclick: () => redrive(q.queue) }, "Redrive")))))));
}

/** Every order's latest status, newest change first, as the socket pushes them. */
function liveOrders(user) {
  const rows = h("tbody", {}, h("tr", { class: "waiting" }, h("td", { colspan: 3, class: "muted" },
    user?.admin ? "Waiting for the next order update…" : "Sign in as an administrator to follow every order live.")));
  if (!user?.admin) return { section: rows, stop: () => {} };
  const latest = new Map();
  const stop = live.follow({
    everyOrder: true,
    onState: (open) => {
      document.querySelector(".live-state")?.replaceChildren(open ? "live" : "reconnecting…");
    },
    onUpdate: (update) => {
      const known = latest.get(update.orderId);
      if (known && known.at >= update.at) return;
      latest.set(update.orderId, update);
      rows.querySelector(".waiting")?.remove();
      rows.querySelector(`tr[data-order="${update.orderId}"]`)?.remove();
      rows.prepend(h("tr", { "data-order": update.orderId },
        h("td", {}, h("a", { href: `#/orders/${update.orderId}` }, h("code", {}, update.orderId.slice(-8)))),
        h("td", {}, badge(update.status)),
        h("td", {}, h("time", { datetime: update.at }, when(update.at)))));
      while (rows.children.length > KEPT_EVENTS) rows.lastChild.remove();
    },
  });
  return { section: rows, stop };
}

export async function operations(_params, { config, main, user }) {
  const orders = liveOrders(user);
  const ordersSection = h("section", {}, h("h2", {}, "Order updates ", h("span", { class: "muted live-state" }, "")),
    h("table", { class: "lines compact orders-live" },
      h("thead", {}, h("tr", {}, ["Order", "Status", "Since"].map((t) => h("th", {}, t)))), orders.section));
  if (!config.operations) {
    show(main, h("h1", {}, "Operations"), ordersSection,
      h("p", {}, "The bus feed, the functions' figures and the dead-letter queues come with shop-local; on AWS, use the capabilities' dashboards."));
    return orders.stop;
  }
  const events = h("tbody", {}, h("tr", { class: "waiting" }, h("td", { colspan: 5, class: "muted" }, "Waiting for the next event…")));
  const functions = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const letters = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(main,
    h("h1", {}, "Operations"),
    ordersSection,
    h("p", { class: "muted" }, "shop-local only: what crosses the bus, what each function did, what the shop gave up on."),
    h("section", {}, h("h2", {}, "Events on the bus, live"),
      h("table", { class: "lines compact events" },
        h("thead", {}, h("tr", {}, ["At", "Source", "Event", "Subject", ""].map((t) => h("th", {}, t)))), events)),
    h("section", {}, h("h2", {}, "Functions"), functions),
    h("section", {}, h("h2", {}, "Dead-letter queues ", h("button", { class: "link", onclick: () => deadLetters(letters) }, "refresh")), letters));

  const feed = new AbortController();
  follow(events, feed.signal).catch(() => {});
  const refreshStats = async () => {
    const response = await fetch("/_local/stats");
    if (response.ok) show(functions, functionsTable(await response.json()));
  };
  await Promise.all([refreshStats(), deadLetters(letters)]);
  const timer = setInterval(refreshStats, STATS_EVERY_MS);
  return () => {
    orders.stop();
    feed.abort();
    clearInterval(timer);
  };
}
