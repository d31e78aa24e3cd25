//! The payment provider: the port payment charges and refunds through, the retry policy
//! every call runs under, and the adapter to a provider's HTTPS API ([`HttpProvider`]).
//!
//! Every call carries an idempotency key, so the provider does each charge or refund at
//! most once however often it is asked: that is what makes retrying safe, including a
//! retry after a timeout that left the first attempt's fate unknown.

use std::sync::RwLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use shop_events::Money;

use crate::secret::{ApiKey, ApiKeySecret, SecretError};

/// A charge as the provider holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub amount: Money,
    pub refunded: bool,
    pub refund_id: Option<String>,
}

/// A refund as the provider made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub charge_id: String,
    pub amount: Money,
}

/// What went wrong with a provider call, by what it means for the money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined: definitive, nothing was charged.
    #[error("the card was declined")]
    Declined,
    /// No usable answer. `uncertain` when the request may have been processed anyway: it
    /// was sent and the answer never came or could not be read, the provider failed after
    /// it may have acted (5xx), or another request under the same key is still running
    /// (409 `idempotency_key_in_use`). Certain only when the request never left (no
    /// connection) or the provider said it did not process it (429).
    #[error("the provider is unavailable ({}): {detail}", if *.uncertain { "the request may have been processed" } else { "the request was not processed" })]
    Unavailable { uncertain: bool, detail: String },
    /// The provider refused the request as it is (a 4xx other than a decline): a
    /// configuration or contract error that no retry cures. Nothing was processed.
    #[error("the provider rejected the request with {status}: {detail}")]
    Rejected { status: u16, detail: String },
}

impl ProviderError {
    fn unavailable(uncertain: bool, detail: impl Into<String>) -> Self {
        ProviderError::Unavailable {
            uncertain,
            detail: detail.into(),
        }
    }
}

/// A payment provider: the narrow set of operations payment needs from one.
pub trait PaymentProvider: Send + Sync {
    /// Charges `amount` to `token`, once per `idempotency_key`: the same key again answers
    /// the first charge (or decline) instead of charging again.
    fn charge(
        &self,
        idempotency_key: &str,
        amount: &Money,
        token: &str,
    ) -> impl Future<Output = Result<Charge, ProviderError>> + Send;

    /// The charge made under `idempotency_key`, if one was (a decline is none).
    fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<Option<Charge>, ProviderError>> + Send;

    /// Refunds all of `charge_id` (`amount` is its whole amount), once per
    /// `idempotency_key`.
    fn refund(
        &self,
        idempotency_key: &str,
        charge_id: &str,
        amount: &Money,
    ) -> impl Future<Output = Result<Refund, ProviderError>> + Send;
}

/// How hard to try a provider call before giving up: `attempts` tries, each cut off after
/// `attempt_timeout`, with exponential backoff from `first_backoff` and full jitter in
/// between. Only [`ProviderError::Unavailable`] is retried; a decline or a rejection is
/// the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The most the pause before retry number `retry` (1 = the second attempt) can be:
    /// `first_backoff`, doubled for each retry after the first.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(16);
        self.first_backoff.saturating_mul(1 << doublings)
    }

    /// The pause before retry number `retry`, for `unit` drawn uniformly from [0, 1):
    /// "full jitter", so that callers who failed together do not come back together.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        self.backoff_ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The longest one call under this policy can take: every attempt timing out, every
    /// pause at its ceiling. What the consumer's function timeout is sized on.
    pub fn worst_case(&self) -> Duration {
        let pauses = (1..self.attempts).map(|retry| self.backoff_ceiling(retry));
        self.attempt_timeout.saturating_mul(self.attempts) + pauses.sum::<Duration>()
    }

    /// Runs `operation` under the policy. When every attempt was unavailable, the answer
    /// is [`ProviderError::Unavailable`], uncertain if any attempt was: one timed-out
    /// charge is enough for a charge to exist. A rejection after an uncertain attempt is no
    /// proof either (the first attempt may have gone through, and the rejection be about
    /// the retry), so it stays uncertain; a decline or a success is the provider's answer
    /// for the key, whatever came before.
    pub async fn run<T, Op, Fut>(&self, what: &str, operation: Op) -> Result<T, ProviderError>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let no_guard = |_| std::future::ready(Ok::<(), std::convert::Infallible>(()));
        match self.run_guarded(what, operation, no_guard).await {
            Ok(outcome) => outcome,
            Err(never) => match never {},
        }
    }

    /// [`Self::run`], with `guard` awaited before every attempt after the first (its
    /// number given): the caller's chance to record that another request is about to go
    /// out, or to stop. A guard's error ends the call at once (`Err`); otherwise the
    /// answer is the policy's (`Ok`).
    pub async fn run_guarded<T, E, Op, Fut, G, GuardFut>(
        &self,
        what: &str,
        mut operation: Op,
        mut guard: G,
    ) -> Result<Result<T, ProviderError>, E>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
        G: FnMut(u32) -> GuardFut,
        GuardFut: Future<Output = Result<(), E>>,
    {
        let attempts = self.attempts.max(1);
        let mut uncertain = false;
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                guard(attempt).await?;
            }
            let outcome = match tokio::time::timeout(self.attempt_timeout, operation()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ProviderError::unavailable(
                    true,
                    format!("no answer within {:?}", self.attempt_timeout),
                )),
            };
            match outcome {
                Err(ProviderError::Unavailable {
                    uncertain: this_one,
                    detail,
                }) => {
                    uncertain |= this_one;
                    tracing::warn!(what, attempt, attempts, uncertain = this_one, error = %detail, "provider call failed");
                    last = detail;
                }
                Err(ProviderError::Rejected { status, detail }) if uncertain => {
                    tracing::warn!(what, attempt, status, error = %detail, "rejected after an unanswered attempt; the outcome stays uncertain");
                    return Ok(Err(ProviderError::unavailable(
                        true,
                        format!("rejected with {status} after an unanswered attempt: {detail}"),
                    )));
                }
                done => return Ok(done),
            }
            if attempt < attempts {
                tokio::time::sleep(self.backoff(attempt, fastrand::f64())).await;
            }
        }
        Ok(Err(ProviderError::unavailable(
            uncertain,
            format!("{attempts} attempts failed; the last: {last}"),
        )))
    }
}

/// Why the provider adapter cannot be set up; the function's init fails with it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Setting(#[from] shop_platform::aws::MissingSetting),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("PROVIDER_URL {0:?} is not an http(s) URL")]
    Url(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A connection that takes longer than this is a provider that is not there; failing fast
/// leaves the attempt's time to a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A backstop for calls made outside a [`RetryPolicy`], which cuts attempts off sooner.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error answer is worth keeping for a log line.
const DETAIL_CHARS: usize = 300;

/// The port's adapter to a provider's HTTP API (the sandbox's, or a real one speaking the
/// same): JSON over HTTPS, `Authorization: Bearer <apiKey>`, an `Idempotency-Key` header
/// on every write. The key is read from Secrets Manager at init and again when the
/// provider answers 401, so a rotated key is picked up without a redeploy.
pub struct HttpProvider {
    client: reqwest::Client,
    base_url: String,
    secret: ApiKeySecret,
    api_key: RwLock<ApiKey>,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("base_url", &self.base_url)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeBody {
    id: String,
    amount: Money,
    #[serde(default)]
    refunded: bool,
    #[serde(default)]
    refund_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundBody {
    id: String,
    charge_id: String,
    amount: Money,
}

impl HttpProvider {
    /// The adapter the consumer Lambda uses: `PROVIDER_URL` and the secret named by
    /// `PROVIDER_SECRET_ID`, read now.
    pub async fn from_env(secrets: aws_sdk_secretsmanager::Client) -> Result<Self, SetupError> {
        let base_url = shop_platform::aws::required_env("PROVIDER_URL")?;
        let secret_id = shop_platform::aws::required_env("PROVIDER_SECRET_ID")?;
        Self::new(&base_url, ApiKeySecret::new(secrets, secret_id)).await
    }

    pub async fn new(base_url: &str, secret: ApiKeySecret) -> Result<Self, SetupError> {
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(SetupError::Url(base_url));
        }
        // The provider is on the public internet (see shop_platform::outbound).
        let client = shop_platform::outbound::client(CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .map_err(|e| SetupError::Client(e.to_string()))?;
        let api_key = secret.read().await?;
        Ok(Self {
            client,
            base_url,
            secret,
            api_key: RwLock::new(api_key),
        })
    }

    fn current_key(&self) -> ApiKey {
        match self.api_key.read() {
            Ok(key) => key.clone(),
            // A writer panicked mid-swap; the key inside is still a whole key.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the secret; whether the key changed.
    async fn refresh_key(&self) -> bool {
        match self.secret.read().await {
            Ok(fresh) => {
                let mut key = match self.api_key.write() {
                    Ok(key) => key,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let changed = *key != fresh;
                *key = fresh;
                changed
            }
            Err(error) => {
                tracing::error!(error = %error, "could not re-read the provider's API key");
                false
            }
        }
    }

    /// Sends the request `build` makes with the current key. A 401 is worth one more try
    /// if the secret holds another key now (it was rotated since init).
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let response = build(&self.client, &self.base_url)
            .bearer_auth(self.current_key().expose())
            .send()
            .await
            .map_err(transport_error)?;
        if response.status() != StatusCode::UNAUTHORIZED || !self.refresh_key().await {
            return Ok(response);
        }
        tracing::info!("the provider refused the API key; retrying with the rotated one");
        build(&self.client, &self.base_url)
            .bearer_auth(self.current_key().expose())
            .send()
            .await
            .map_err(transport_error)
    }
}

/// A request that did not get an answer. Only a connection that was never made proves the
/// provider did not see it; anything later (a timeout, a dropped connection) may have
/// come after the provider acted on it.
fn transport_error(error: reqwest::Error) -> ProviderError {
    let uncertain = !error.is_connect();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::unavailable(uncertain, detail)
}

/// The error code a provider names a request under a key that is still being processed.
pub const KEY_IN_USE: &str = "idempotency_key_in_use";

/// The error an answer that is not a success means.
async fn error_answer(response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail: String = body.chars().take(DETAIL_CHARS).collect();
    let code = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value["error"].as_str().map(str::to_owned));
    if status.is_server_error() {
        // A processor may fail after it acted: the request may have been processed.
        ProviderError::unavailable(true, format!("{status}: {detail}"))
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        // Refused before processing.
        ProviderError::unavailable(false, format!("{status}: {detail}"))
    } else if status == StatusCode::CONFLICT && code.as_deref() == Some(KEY_IN_USE) {
        // An earlier request under this key is still running: its outcome is unknown, and
        // asking again later gets it.
        ProviderError::unavailable(true, format!("{status}: {detail}"))
    } else {
        ProviderError::Rejected {
            status: status.as_u16(),
            detail,
        }
    }
}

/// A success whose body cannot be read: the provider did act, we just cannot tell how.
async fn success_body<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ProviderError> {
    let status = response.status();
    response.json().await.map_err(|error| {
        ProviderError::unavailable(true, format!("unreadable {status} answer: {error}"))
    })
}

/// `value` as one query-string value: every byte but the unreserved ones escaped.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl From<ChargeBody> for Charge {
    fn from(body: ChargeBody) -> Self {
        Charge {
            id: body.id,
            amount: body.amount,
            refunded: body.refunded,
            refund_id: body.refund_id,
        }
    }
}

impl PaymentProvider for HttpProvider {
    async fn charge(
        &self,
        idempotency_key: &str,
        amount: &Money,
        token: &str,
    ) -> Result<Charge, ProviderError> {
        let body = serde_json::json!({ "amount": amount, "token": token });
        let response = self
            .send(|client, base| {
                client
                    .post(format!("{base}/v1/charges"))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        match response.status() {
            status if status.is_success() => Ok(success_body::<ChargeBody>(response).await?.into()),
            StatusCode::PAYMENT_REQUIRED => Err(ProviderError::Declined),
            _ => Err(error_answer(response).await),
        }
    }

    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<Charge>, ProviderError> {
        let response = self
            .send(|client, base| {
                client.get(format!(
                    "{base}/v1/charges?idempotencyKey={}",
                    percent_encoded(idempotency_key)
                ))
            })
            .await?;
        match response.status() {
            status if status.is_success() => {
                Ok(Some(success_body::<ChargeBody>(response).await?.into()))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(error_answer(response).await),
        }
    }

    async fn refund(
        &self,
        idempotency_key: &str,
        charge_id: &str,
        amount: &Money,
    ) -> Result<Refund, ProviderError> {
        let body = serde_json::json!({ "amount": amount });
        let response = self
            .send(|client, base| {
                client
                    .post(format!("{base}/v1/charges/{charge_id}/refunds"))
                    .header("Idempotency-Key", idempotency_key)
                    .json(&body)
            })
            .await?;
        if !response.status().is_success() {
            return Err(error_answer(response).await);
        }
        let body: RefundBody = success_body(response).await?;
        Ok(Refund {
            id: body.id,
            charge_id: body.charge_id,
            amount: body.amount,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    #[test]
    fn query_values_are_escaped_except_unreserved_characters() {
        assert_eq!(percent_encoded("refund-01AB_c.~"), "refund-01AB_c.~");
        assert_eq!(percent_encoded("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn the_default_policy_is_four_attempts_of_two_seconds_backing_off_from_200_ms() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts, 4);
        assert_eq!(policy.attempt_timeout, Duration::from_secs(2));
        let ceilings: Vec<u128> = (1..=4)
            .map(|r| policy.backoff_ceiling(r).as_millis())
            .collect();
        assert_eq!(ceilings, [200, 400, 800, 1600]);
        // 4 x 2 s of attempts and 200 + 400 + 800 ms of pauses.
        assert_eq!(policy.worst_case(), Duration::from_millis(9_400));
    }

    #[test]
    fn full_jitter_draws_the_pause_between_nothing_and_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(400));
        assert!(policy.backoff(3, 0.999_999) <= Duration::from_millis(800));
        assert_eq!(
            policy.backoff(3, 7.0),
            Duration::from_millis(800),
            "never past the ceiling"
        );
        assert_eq!(
            policy.backoff_ceiling(1_000),
            policy.backoff_ceiling(17),
            "no overflow"
        );
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(1),
            attempt_timeout: Duration::from_millis(100),
        }
    }

    /// Answers the scripted outcomes in turn, counting the calls; `None` never answers.
    struct Script(Mutex<Vec<Option<Result<u32, ProviderError>>>>, Mutex<u32>);

    impl Script {
        fn new(outcomes: Vec<Option<Result<u32, ProviderError>>>) -> Self {
            Self(Mutex::new(outcomes), Mutex::new(0))
        }

        async fn call(&self) -> Result<u32, ProviderError> {
            *self.1.lock().unwrap() += 1;
            let next = self.0.lock().unwrap().remove(0);
            match next {
                Some(outcome) => outcome,
                None => std::future::pending().await,
            }
        }

        fn calls(&self) -> u32 {
            *self.1.lock().unwrap()
        }
    }

    fn down(uncertain: bool) -> Option<Result<u32, ProviderError>> {
        Some(Err(ProviderError::unavailable(uncertain, "down")))
    }

    #[tokio::test]
    async fn unavailable_attempts_are_retried_until_one_answers() {
        let script = Script::new(vec![down(false), down(false), Some(Ok(7))]);
        assert_eq!(quick().run("test", || script.call()).await, Ok(7));
        assert_eq!(script.calls(), 3);
    }

    #[tokio::test]
    async fn a_decline_or_a_rejection_is_the_answer_at_once() {
        for definitive in [
            ProviderError::Declined,
            ProviderError::Rejected {
                status: 422,
                detail: "bad".into(),
            },
        ] {
            let script = Script::new(vec![down(false), Some(Err(definitive.clone()))]);
            assert_eq!(quick().run("test", || script.call()).await, Err(definitive));
            assert_eq!(script.calls(), 2);
        }
    }

    #[tokio::test]
    async fn a_rejection_after_an_unanswered_attempt_keeps_the_uncertainty() {
        let rejected = || {
            Some(Err(ProviderError::Rejected {
                status: 409,
                detail: "conflict".into(),
            }))
        };
        let script = Script::new(vec![down(true), rejected()]);
        let outcome = quick().run("test", || script.call()).await;
        assert!(
            matches!(
                outcome,
                Err(ProviderError::Unavailable {
                    uncertain: true,
                    ..
                })
            ),
            "{outcome:?}"
        );
        assert_eq!(script.calls(), 2, "no retry of a rejection");
        // Whereas a decline or a charge is the provider's answer for the key.
        let script = Script::new(vec![down(true), Some(Err(ProviderError::Declined))]);
        assert_eq!(
            quick().run("test", || script.call()).await,
            Err(ProviderError::Declined)
        );
        let script = Script::new(vec![None, Some(Ok(7))]);
        assert_eq!(quick().run("test", || script.call()).await, Ok(7));
    }

    #[tokio::test]
    async fn a_guard_runs_before_every_retry_and_can_stop_the_call() {
        let script = Script::new(vec![down(true), down(true), Some(Ok(7))]);
        let guarded = Mutex::new(Vec::new());
        let outcome = quick()
            .run_guarded(
                "test",
                || script.call(),
                |attempt| {
                    guarded.lock().unwrap().push(attempt);
                    std::future::ready(Ok::<(), &str>(()))
                },
            )
            .await;
        assert_eq!(outcome, Ok(Ok(7)));
        assert_eq!(
            *guarded.lock().unwrap(),
            [2, 3],
            "before each retry, not the first"
        );

        let script = Script::new(vec![down(true), Some(Ok(7))]);
        let outcome = quick()
            .run_guarded(
                "test",
                || script.call(),
                |_| std::future::ready(Err("moved on")),
            )
            .await;
        assert_eq!(outcome, Err("moved on"));
        assert_eq!(script.calls(), 1, "no attempt after a failed guard");
    }

    #[tokio::test]
    async fn exhausted_attempts_are_uncertain_if_any_one_was() {
        let script = Script::new(vec![down(false); 4]);
        let outcome = quick().run("test", || script.call()).await;
        assert!(matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: false,
                ..
            })
        ));
        assert_eq!(script.calls(), 4);

        let script = Script::new(vec![down(false), down(true), down(false), down(false)]);
        let outcome = quick().run("test", || script.call()).await;
        assert!(matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: true,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_attempt_that_never_answers_is_cut_off_and_counts_as_uncertain() {
        let script = Script::new(vec![None, None, None, None]);
        let started = Instant::now();
        let outcome = quick().run("test", || script.call()).await;
        let Err(ProviderError::Unavailable { uncertain, detail }) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(uncertain);
        assert!(detail.contains("4 attempts"), "{detail}");
        assert_eq!(script.calls(), 4);
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(started.elapsed() < quick().worst_case() + Duration::from_millis(500));
    }
}
