// Sign-in: OAuth 2.0 authorization code with PKCE, against whatever config.json names (the
// user pool's managed login on AWS, shop-local's stand-in locally). Tokens live in
// sessionStorage, for this tab only; the code and state leave the URL as soon as they are
// read.

const TOKENS = "shop.tokens";
const PENDING = "shop.signin";

let config;

export function configure(appConfig) {
  config = appConfig;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Leaves for the sign-in page; `returnTo` is the hash route to come back to. */
export async function signIn(returnTo = location.hash || "#/") {
  const verifier = randomString();
  const state = randomString();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const url = new URL(config.authorizeUrl);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    scope: "openid email",
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

async function tokenRequest(fields) {
  const response = await fetch(config.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.clientId, ...fields }).toString(),
  });
  if (!response.ok) throw new Error(`sign-in refused (${response.status})`);
  return response.json();
}

function store(tokens, previous) {
  const claims = decode(tokens.access_token);
  sessionStorage.setItem(TOKENS, JSON.stringify({
    access: tokens.access_token,
    refresh: tokens.refresh_token ?? previous?.refresh,
    expiresAt: (claims.exp ?? 0) * 1000,
  }));
}

/**
 * Finishes a sign-in if the page was opened by the sign-in page's redirect; answers the
 * route to show next, or null if this was no sign-in.
 */
export async function completeSignIn() {
  const query = new URLSearchParams(location.search);
  const code = query.get("code");
  const error = query.get("error");
  if (!code && !error) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null");
  sessionStorage.removeItem(PENDING);
  // The code and state never stay in the address bar or the history.
  history.replaceState(null, "", location.pathname + (pending?.returnTo ?? "#/"));
  if (error) throw new Error(`sign-in failed: ${error}`);
  if (!pending || query.get("state") !== pending.state) {
    throw new Error("sign-in answer does not match the sign-in this tab started");
  }
  store(await tokenRequest({
    grant_type: "authorization_code",
    code,
    redirect_uri: config.redirectUri,
    code_verifier: pending.verifier,
  }));
  return pending.returnTo;
}

function saved() {
  return JSON.parse(sessionStorage.getItem(TOKENS) ?? "null");
}

/** The access token to call the API with, refreshed when it is about to expire; null when signed out. */
export async function accessToken() {
  const tokens = saved();
  if (!tokens) return null;
  if (Date.now() < tokens.expiresAt - 30_000) return tokens.access;
  if (!tokens.refresh) {
    sessionStorage.removeItem(TOKENS);
    return null;
  }
  try {
    store(await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh }), tokens);
    return saved().access;
  } catch {
    sessionStorage.removeItem(TOKENS);
    return null;
  }
}

function decode(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** Who is signed in, as the token says (the API checks it; this only shapes the pages). */
export function user() {
  const tokens = saved();
  if (!tokens) return null;
  const claims = decode(tokens.access);
  const groups = claims["cognito:groups"] ?? [];
  return { id: claims.sub, name: claims.username ?? claims.sub, admin: groups.includes("admin") };
}

export function signOut() {
  sessionStorage.removeItem(TOKENS);
  const url = new URL(config.logoutUrl);
  url.search = new URLSearchParams({ client_id: config.clientId, logout_uri: config.redirectUri }).toString();
  location.assign(url.toString());
}
