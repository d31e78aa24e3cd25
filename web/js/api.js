// The shop's HTTP API, as docs/openapi.yaml describes it: every answer comes back as
// {status, body}, so pages decide what each status means to a person.

import { accessToken } from "./auth.js";

let base = "";

export function configure(config) {
  base = config.apiUrl.replace(/\/$/, "");
}

export async function call(method, path, body, headers = {}) {
  const token = await accessToken();
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text };
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export const get = (path) => call("GET", path);
export const put = (path, body) => call("PUT", path, body);
export const post = (path, body, headers) => call("POST", path, body, headers);
export const del = (path) => call("DELETE", path);

/** Calls `check` every `everyMs` until it answers something other than undefined. */
export async function until(check, { everyMs = 500, forMs = 30_000 } = {}) {
  const deadline = Date.now() + forMs;
  for (;;) {
    const result = await check();
    if (result !== undefined || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
