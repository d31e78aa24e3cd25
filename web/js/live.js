// Live order updates over the notifications WebSocket API (DESIGN §6): a page follows the
// updates it cares about while the socket is open, and says when it is not, so the page
// polls instead. The socket reconnects on its own, with growing, jittered pauses.
//
// Browsers cannot set headers on a WebSocket: the access token goes in the query string,
// fresh at every (re)connect. API Gateway checks it once, at $connect.

import { accessToken } from "./auth.js";

let url = null;
/** API Gateway closes a connection idle for ten minutes: a ping well inside that. */
const KEEP_ALIVE_MS = 4 * 60_000;
const FIRST_PAUSE_MS = 500;
const MAX_PAUSE_MS = 30_000;

export function configure(config) {
  url = config.websocketUrl || null;
}

/**
 * Follows order updates until the returned function is called. `onUpdate(message)` gets
 * each `{type: "orderStatus", orderId, status, at, reason?}`; `onState(open)` is told when
 * the socket opens (updates flow: stop polling, and read once what may have passed before)
 * and when it closes (poll until it is back). `everyOrder` asks for every order's updates,
 * which only an admin's connection is granted.
 */
export function follow({ onUpdate, onState, everyOrder = false }) {
  let stopped = false;
  let socket = null;
  let attempt = 0;
  let retry = null;
  let keepAlive = null;
  const reconnectLater = () => {
    const pause = Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    retry = setTimeout(connect, pause);
  };
  const connect = async () => {
    const token = await accessToken();
    if (stopped) return;
    if (!url || !token) {
      onState(false);
      return;
    }
    socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      if (everyOrder) socket.send(JSON.stringify({ action: "subscribe", scope: "all" }));
      keepAlive = setInterval(() => socket?.send(JSON.stringify({ action: "ping" })), KEEP_ALIVE_MS);
      document.body.dataset.live = "open";
      onState(true);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "orderStatus") onUpdate(message);
    });
    socket.addEventListener("close", () => {
      clearInterval(keepAlive);
      socket = null;
      if (stopped) return;
      document.body.dataset.live = "closed";
      onState(false);
      reconnectLater();
    });
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    clearInterval(keepAlive);
    delete document.body.dataset.live;
    socket?.close(1000);
  };
}

/**
 * `history` with `update` in it, in the order ordering recorded them. An order passes
 * through each status at most once, so an update whose status is there already (pushed
 * twice, or read before it was pushed) changes nothing.
 */
export function merged(history, update) {
  if (history.some((step) => step.status === update.status)) return history;
  const step = { status: update.status, at: update.at, ...(update.reason ? { reason: update.reason } : {}) };
  return [...history, step].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}
