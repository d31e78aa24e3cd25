//! The storefront and operations console as shop-local serves them: the files of `web/`
//! at `/`, the app's `config.json`, and the sign-in endpoints of Cognito's managed login
//! (OAuth 2.0 authorization code with PKCE, refresh, logout) backed by the local issuer.
//! The app reads its endpoints from `config.json`, so it signs in the same way here and
//! against a user pool on AWS; only the form asking who you are differs (a user name and an
//! admin box instead of a password).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::issuer::{Issuer, LOCAL_CLIENT_ID};

/// How long a sign-in's tokens live: as the root template's app client gives them.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How long an authorization code may wait for its exchange (Cognito: 5 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The policy CloudFront sends with every page (`WebHeadersPolicy` in the root template),
/// with the API and the sign-in endpoints on this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'";

/// A signed-in user, as a grant or a refresh token remembers them.
#[derive(Clone)]
struct Session {
    user: String,
    admin: bool,
}

struct Grant {
    session: Session,
    challenge: String,
    redirect_uri: String,
    issued: Instant,
}

pub struct Web {
    files: PathBuf,
    api_url: String,
    sandbox: bool,
    /// Where the app follows its orders live (the WebSocket API's stage), if there is one.
    websocket_url: Option<String>,
    grants: Mutex<HashMap<String, Grant>>,
    refresh_tokens: Mutex<HashMap<String, Session>>,
}

/// An answer the web module gives, before it becomes a hyper response.
pub type Answer = Response<Bytes>;

impl Web {
    /// `files` is the repository's `web/`; `sandbox` whether payment charges through the
    /// sandbox provider (the checkout then offers its test cards).
    pub fn new(files: PathBuf, api_url: &str, sandbox: bool) -> Self {
        Self {
            files,
            api_url: api_url.trim_end_matches('/').to_owned(),
            sandbox,
            websocket_url: None,
            grants: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The app follows its orders live at `url`.
    pub fn with_websocket(self, url: Option<String>) -> Self {
        Self {
            websocket_url: url,
            ..self
        }
    }

    /// The only URL sign-in may return to, and sign-out lead to: the app itself (the app
    /// client's CallbackURLs and LogoutURLs on AWS).
    fn app_url(&self) -> String {
        format!("{}/", self.api_url)
    }

    /// What the app needs to know about where it runs; on AWS the deploy writes the same
    /// file from the stack's outputs.
    pub fn config(&self) -> Value {
        json!({
            "apiUrl": self.api_url,
            "clientId": LOCAL_CLIENT_ID,
            "authorizeUrl": format!("{}/oauth2/authorize", self.api_url),
            "tokenUrl": format!("{}/oauth2/token", self.api_url),
            "logoutUrl": format!("{}/logout", self.api_url),
            "redirectUri": self.app_url(),
            "sandboxPayments": self.sandbox,
            "operations": true,
            "websocketUrl": self.websocket_url,
        })
    }

    /// The answer for a request this module serves, or `None` to leave it to the API.
    pub fn answer(
        &self,
        issuer: &Issuer,
        method: &Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Option<Answer> {
        match (method, path) {
            (&Method::GET, "/config.json") => Some(json_answer(StatusCode::OK, &self.config())),
            (&Method::GET, "/oauth2/authorize") => Some(self.authorize_page(query)),
            (&Method::POST, "/oauth2/authorize") => Some(self.authorize(body)),
            (&Method::POST, "/oauth2/token") => Some(self.token(issuer, body)),
            (&Method::GET, "/logout") => Some(self.logout(query)),
            (&Method::GET | &Method::HEAD, _) => self.file(path),
            _ => None,
        }
    }

    /// A file of `web/`, `/` being `index.html`. Nothing outside the folder, no hidden
    /// file, no directory listing.
    fn file(&self, path: &str) -> Option<Answer> {
        let relative = match path {
            "/" => "index.html",
            other => other.strip_prefix('/')?,
        };
        let relative = Path::new(relative);
        if !relative.components().all(
            |c| matches!(c, Component::Normal(part) if !part.to_string_lossy().starts_with('.')),
        ) {
            return None;
        }
        let full = self.files.join(relative);
        let content_type = content_type(&full)?;
        let bytes = std::fs::read(&full).ok()?;
        let mut response = Response::new(Bytes::from(bytes));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // Served from the working tree: an edit shows on the next reload.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        with_security_headers(headers);
        Some(response)
    }

    fn authorize_page(&self, query: &str) -> Answer {
        let fields: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Err(problem) = self.check_authorize(&fields) {
            return html_problem(problem);
        }
        let hidden: String = [
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "scope",
        ]
        .iter()
        .filter_map(|name| {
            fields.get(*name).map(|value| {
                format!(
                    r#"<input type="hidden" name="{name}" value="{}">"#,
                    escape(value)
                )
            })
        })
        .collect();
        html_answer(
            StatusCode::OK,
            &format!(
                r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · shop-local</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/style.css"></head>
<body class="signin"><main class="card narrow">
<h1>Sign in</h1>
<p class="muted">shop-local's stand-in for Cognito's sign-in page: any name signs in, no password.</p>
<form method="post" action="/oauth2/authorize">{hidden}
<label>User name <input name="username" autocomplete="username" required maxlength="64" pattern="[A-Za-z0-9._@\-]+" autofocus></label>
<label class="check"><input type="checkbox" name="admin" value="on"> Administrator (the <code>admin</code> group)</label>
<button type="submit">Sign in</button>
</form></main></body></html>"#
            ),
        )
    }

    /// The request's client and return address must be this app's before anything is
    /// shown or redirected: an error never goes to an address nobody registered.
    fn check_authorize(&self, fields: &HashMap<String, String>) -> Result<(), &'static str> {
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        if field("client_id") != LOCAL_CLIENT_ID {
            return Err("unknown client_id");
        }
        if field("redirect_uri") != self.app_url() {
            return Err("redirect_uri is not one of the client's callback URLs");
        }
        if field("response_type") != "code" {
            return Err("response_type must be code");
        }
        if field("code_challenge_method") != "S256" || !is_challenge(field("code_challenge")) {
            return Err("a PKCE code_challenge (S256, 43 base64url characters) is required");
        }
        Ok(())
    }

    fn authorize(&self, body: &[u8]) -> Answer {
        let fields: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        if let Err(problem) = self.check_authorize(&fields) {
            return html_problem(problem);
        }
        let user = fields.get("username").map(|u| u.trim()).unwrap_or_default();
        if user.is_empty()
            || user.len() > 64
            || !user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
        {
            return html_problem("a user name is 1 to 64 of letters, digits and . _ @ -");
        }
        let code = random_token();
        let redirect_uri = fields["redirect_uri"].clone();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.retain(|_, grant| grant.issued.elapsed() < CODE_LIFETIME);
        grants.insert(
            code.clone(),
            Grant {
                session: Session {
                    user: user.to_owned(),
                    admin: fields.get("admin").is_some_and(|v| v == "on"),
                },
                challenge: fields["code_challenge"].clone(),
                redirect_uri: redirect_uri.clone(),
                issued: Instant::now(),
            },
        );
        let mut location = format!("{redirect_uri}?code={code}");
        if let Some(state) = fields.get("state") {
            location.push_str("&state=");
            location.extend(form_urlencoded::byte_serialize(state.as_bytes()));
        }
        redirect(&location)
    }

    fn token(&self, issuer: &Issuer, body: &[u8]) -> Answer {
        let fields: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        if field("client_id") != LOCAL_CLIENT_ID {
            return oauth_error("invalid_client");
        }
        let session = match field("grant_type") {
            "authorization_code" => {
                // A code is good once, whatever the outcome of its exchange.
                let grant = self
                    .grants
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(field("code"));
                let Some(grant) = grant else {
                    return oauth_error("invalid_grant");
                };
                let verified = s256(field("code_verifier")) == grant.challenge;
                if grant.issued.elapsed() >= CODE_LIFETIME
                    || grant.redirect_uri != field("redirect_uri")
                    || !verified
                {
                    return oauth_error("invalid_grant");
                }
                grant.session
            }
            "refresh_token" => {
                let refresh_tokens = self
                    .refresh_tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match refresh_tokens.get(field("refresh_token")) {
                    Some(session) => session.clone(),
                    None => return oauth_error("invalid_grant"),
                }
            }
            _ => return oauth_error("unsupported_grant_type"),
        };
        let access = issuer.token(&session.user, session.admin, TOKEN_LIFETIME);
        let id = issuer.id_token(&session.user, session.admin, TOKEN_LIFETIME);
        let (Ok(access), Ok(id)) = (access, id) else {
            return oauth_error("server_error");
        };
        let mut answer = json!({
            "access_token": access,
            "id_token": id,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
        });
        // As Cognito does: a refresh token with the code exchange, not with a refresh.
        if field("grant_type") == "authorization_code" {
            let refresh = random_token();
            self.refresh_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(refresh.clone(), session);
            answer["refresh_token"] = json!(refresh);
        }
        let mut response = json_answer(StatusCode::OK, &answer);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn logout(&self, query: &str) -> Answer {
        let fields: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        if field("client_id") != LOCAL_CLIENT_ID || field("logout_uri") != self.app_url() {
            return html_problem("logout_uri is not one of the client's sign-out URLs");
        }
        redirect(field("logout_uri"))
    }
}

/// Whether `value` is the shape of an S256 challenge: 32 bytes, base64url, no padding.
fn is_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's generator failing is not something a sign-in page can work around.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        _ => return None,
    })
}

/// The headers CloudFront's response headers policy adds on AWS (HSTS aside: there is no
/// TLS here).
fn with_security_headers(headers: &mut http::HeaderMap) {
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    let mut response = Response::new(Bytes::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn html_answer(status: StatusCode, html: &str) -> Answer {
    let mut response = Response::new(Bytes::from(html.to_owned()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_security_headers(headers);
    response
}

fn html_problem(message: &str) -> Answer {
    html_answer(
        StatusCode::BAD_REQUEST,
        &format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head><body><h1>Sign-in error</h1><p>{}</p></body></html>",
            escape(message)
        ),
    )
}

fn oauth_error(error: &str) -> Answer {
    json_answer(StatusCode::BAD_REQUEST, &json!({ "error": error }))
}

fn redirect(location: &str) -> Answer {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "http://127.0.0.1:3000";
    /// A verifier and its S256 challenge as Python computes it:
    /// `base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")`.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUjRcBFIcmW4C1mXgaY7Q";
    const CHALLENGE: &str = "WLEDl_gAgWSke0koYdi3QGqTBek_pA92bSq5m1huDFM";

    fn setup() -> (Web, Issuer, PathBuf) {
        let dir = std::env::temp_dir().join(format!("shop-local-web-{}", ulid::Ulid::generate()));
        let issuer = Issuer::load_or_create(&dir).unwrap();
        std::fs::create_dir_all(dir.join("web/js")).unwrap();
        std::fs::write(dir.join("web/index.html"), "<!doctype html>").unwrap();
        std::fs::write(dir.join("web/js/app.js"), "export {}").unwrap();
        std::fs::write(dir.join("web/.secret.js"), "no").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        (Web::new(dir.join("web"), API, true), issuer, dir)
    }

    fn authorize_form(user: &str, admin: bool) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("response_type", "code")
            .append_pair("client_id", LOCAL_CLIENT_ID)
            .append_pair("redirect_uri", &format!("{API}/"))
            .append_pair("state", "s t&ate")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("username", user);
        if admin {
            form.append_pair("admin", "on");
        }
        form.finish()
    }

    fn code_of(answer: &Answer) -> String {
        let location = answer.headers()[header::LOCATION].to_str().unwrap();
        let query = location.split_once('?').unwrap().1;
        let fields: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(fields["state"], "s t&ate", "the state comes back as sent");
        fields["code"].clone()
    }

    fn exchange(web: &Web, issuer: &Issuer, code: &str, verifier: &str) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("client_id", LOCAL_CLIENT_ID)
            .append_pair("code", code)
            .append_pair("redirect_uri", &format!("{API}/"))
            .append_pair("code_verifier", verifier)
            .finish();
        web.token(issuer, body.as_bytes())
    }

    #[test]
    fn s256_agrees_with_another_implementation() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
    }

    #[test]
    fn a_code_with_its_verifier_buys_tokens_the_gateway_accepts_once() {
        let (web, issuer, dir) = setup();
        let answer = web.authorize(authorize_form("ada", true).as_bytes());
        assert_eq!(answer.status(), StatusCode::FOUND);
        let code = code_of(&answer);
        let tokens = exchange(&web, &issuer, &code, VERIFIER);
        assert_eq!(tokens.status(), StatusCode::OK);
        let tokens: Value = serde_json::from_slice(tokens.body()).unwrap();
        let claims = issuer
            .verify(
                &format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
                &crate::issuer::issuer_url(),
                &[LOCAL_CLIENT_ID.to_owned()],
            )
            .unwrap();
        assert_eq!(claims["sub"], "ada");
        assert_eq!(claims["cognito:groups"], "[admin]");
        assert_eq!(tokens["expires_in"], 900);
        assert_eq!(
            exchange(&web, &issuer, &code, VERIFIER).status(),
            StatusCode::BAD_REQUEST,
            "a code is good once"
        );

        let refresh = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", LOCAL_CLIENT_ID)
            .append_pair("refresh_token", tokens["refresh_token"].as_str().unwrap())
            .finish();
        let refreshed = web.token(&issuer, refresh.as_bytes());
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = serde_json::from_slice(refreshed.body()).unwrap();
        assert!(refreshed["access_token"].is_string());
        assert!(refreshed.get("refresh_token").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_wrong_verifier_or_return_address_gets_nothing() {
        let (web, issuer, dir) = setup();
        let code = code_of(&web.authorize(authorize_form("eve", false).as_bytes()));
        let wrong = exchange(
            &web,
            &issuer,
            &code,
            "not-the-verifier-that-made-the-challenge-xx",
        );
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let code = code_of(&web.authorize(authorize_form("eve", false).as_bytes()));
        assert_eq!(
            exchange(&web, &issuer, &code, VERIFIER).status(),
            StatusCode::OK,
            "a new code with the right verifier"
        );

        let elsewhere = authorize_form("eve", false).replace(
            &form_urlencoded::byte_serialize(format!("{API}/").as_bytes()).collect::<String>(),
            "https%3A%2F%2Fevil.example%2F",
        );
        let refused = web.authorize(elsewhere.as_bytes());
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(
            refused.headers().get(header::LOCATION).is_none(),
            "no redirect to it"
        );
        let no_pkce = authorize_form("eve", false).replace("S256", "plain");
        assert_eq!(
            web.authorize(no_pkce.as_bytes()).status(),
            StatusCode::BAD_REQUEST
        );
        let bad_name = authorize_form("<script>", false);
        assert_eq!(
            web.authorize(bad_name.as_bytes()).status(),
            StatusCode::BAD_REQUEST
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_visible_files_of_the_folder_are_served() {
        let (web, issuer, dir) = setup();
        let get = |path: &str| web.answer(&issuer, &Method::GET, path, "", b"");
        let index = get("/").unwrap();
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(
            index.headers()["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            get("/js/app.js").unwrap().headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        for outside in [
            "/../secret.txt",
            "/js/../../secret.txt",
            "/.secret.js",
            "/missing.js",
            "/js",
        ] {
            assert!(get(outside).is_none(), "{outside}");
        }
        let config = get("/config.json").unwrap();
        let config: Value = serde_json::from_slice(config.body()).unwrap();
        assert_eq!(config["redirectUri"], format!("{API}/"));
        assert_eq!(config["sandboxPayments"], true);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
