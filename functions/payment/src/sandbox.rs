//! The sandbox payment provider: a stand-in for a card processor's test mode, served as its
//! own Lambda behind a Function URL with its own ledger table, so a deployed shop charges
//! something out of the box. Payment talks to it exactly as to a real provider (over
//! HTTP, through [`crate::provider::HttpProvider`]); it shares nothing of payment's state.
//!
//! Its API (JSON, camelCase; `Authorization: Bearer <apiKey>` on everything but
//! `/health`, the key being the one in the secret `SECRET_ID`):
//!
//! | route | answers |
//! |---|---|
//! | `POST /v1/charges` `{amount, token}` + `Idempotency-Key` | 201 the charge; 402 `{"error": "card_declined"}` for a token starting `tok_decline` |
//! | `GET /v1/charges?idempotencyKey=K` | 200 the charge made under K (with `refunded`, `refundId`), or 404 |
//! | `POST /v1/charges/{chargeId}/refunds` `{amount}` + `Idempotency-Key` | 200 the refund; full refunds only (422); 409 once refunded under another key |
//! | `GET`/`PUT /v1/test-mode` `{outage, failNext, delayMs, failAfterActing}` | the switches that make it misbehave, for tests |
//! | `GET /health` | 200 while its ledger answers |
//!
//! Idempotency is a card processor's: the outcome of a write (a charge, a decline, a
//! refund) is stored under its key with the request's fingerprint, conditionally, in the
//! same transaction as the write itself. The same key again — also concurrently: the loser
//! of the conditional write reads the winner's — answers the stored outcome with
//! `Idempotent-Replayed: true` and never does the write twice; the same key with another
//! request is a 422. While a request under a key is being processed, another one under the
//! same key (a client's retry after its timeout) is answered 409
//! `{"error": "idempotency_key_in_use"}`, as card processors do, and so is a lookup of the
//! charge under that key: nobody can conclude "no charge" while one is being made.
//!
//! Test mode acts out what real processors do to their clients: `outage` and `failNext`
//! answer 503 before anything is processed (never stored, so a retry is a first attempt);
//! `delayMs` holds every request that long before it is processed, past a client's
//! timeout, and completes it anyway; `failAfterActing` makes the next n charges or refunds
//! happen and then answers 500, as a processor that failed on its way out.
//!
//! Ledger items: `IDEMPOTENCY#<charge|refund>#<key>` (the stored outcome),
//! `INFLIGHT#<charge|refund>#<key>` (a request under the key is being processed),
//! `CHARGE#<chargeId>` (the charge and its refund), `TESTMODE` (the switches, so that
//! every instance of the function sees them).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::Utc;
use garde::Validate;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shop_events::{Money, new_ulid, timestamp};
use shop_platform::Problem;
use shop_platform::http::{answer, health, json_body, json_response, query_param};
use shop_platform::store::{
    Condition, Item, Read, Table, TableError, condition_failed, dynamo_error, key,
};
use shop_platform::transaction::CommitError;

use crate::secret::{ApiKey, ApiKeySecret, SecretError};

/// The prefix of the tokens the sandbox declines, as a card processor's test cards.
pub const DECLINED_TOKEN_PREFIX: &str = "tok_decline";
/// The longest delay test mode may impose on a request: longer than the consumer's
/// attempt timeout (2 s), to leave charges uncertain; well inside the function's timeout,
/// so a delayed request still completes after its client gave up; and within the
/// consumer's settle window (see `consumer::DEFAULT_SETTLE_WINDOW`).
pub const MAX_DELAY_MS: u64 = 5_000;
/// The most failures test mode may queue up.
pub const MAX_FAIL_NEXT: u64 = 1_000;
/// How long a request's hold on its idempotency key lasts at most: longer than the
/// function may run (15 s), so a crashed request frees its key without anyone's help.
const IN_FLIGHT_SECONDS: i64 = 30;
/// The largest charge: more than any order can total (50 lines of 99 units at 10^9).
const MAX_AMOUNT: i64 = 10_000_000_000_000;
/// How long the ledger keeps charges and stored outcomes: far longer than anyone retries
/// or reconciles a charge (SQS keeps a message 14 days).
const LEDGER_RETENTION_SECONDS: i64 = 90 * 24 * 3600;
/// A presented key that does not match is checked against the secret again at most this
/// often, so a rotated key works here without a redeploy, yet bad keys cannot make the
/// sandbox hammer Secrets Manager.
pub const DEFAULT_KEY_REFRESH: Duration = Duration::from_secs(30);
const MAX_BODY_BYTES: usize = 4 * 1024;

const CHARGE_SCOPE: &str = "charge";
const REFUND_SCOPE: &str = "refund";

/// The key the sandbox accepts, and when it was last read from the secret.
struct KnownKey {
    key: ApiKey,
    read_at: Instant,
}

pub struct Sandbox {
    ledger: Table,
    secret: ApiKeySecret,
    known: RwLock<KnownKey>,
    key_refresh: Duration,
}

/// A stored outcome of a write under an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredOutcome {
    pk: String,
    sk: String,
    fingerprint: String,
    status: u16,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charge_id: Option<String>,
    created_at: String,
    expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeRecord {
    pk: String,
    sk: String,
    id: String,
    amount: Money,
    idempotency_key: String,
    refunded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refund_id: Option<String>,
    created_at: String,
    expires_at: i64,
}

impl ChargeRecord {
    /// The charge as the API shows it.
    fn view(&self) -> Value {
        let mut view = json!({
            "id": self.id,
            "object": "charge",
            "status": "succeeded",
            "amount": self.amount,
            "refunded": self.refunded,
            "created": self.created_at,
        });
        if let Some(refund_id) = &self.refund_id {
            view["refundId"] = json!(refund_id);
        }
        view
    }
}

/// The test-mode switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TestMode {
    /// Every request answers 503.
    #[garde(skip)]
    pub outage: bool,
    /// The next n requests answer 503.
    #[garde(range(max = MAX_FAIL_NEXT))]
    pub fail_next: u64,
    /// Every request waits this long before it is processed.
    #[garde(range(max = MAX_DELAY_MS))]
    pub delay_ms: u64,
    /// The next n charges or refunds are made, then answered 500.
    #[garde(range(max = MAX_FAIL_NEXT))]
    pub fail_after_acting: u64,
}

/// The switches as stored, written by an update expression; its keys are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestModeItem {
    #[serde(default)]
    outage: bool,
    #[serde(default)]
    fail_next: u64,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    fail_after_acting: u64,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct AmountInput {
    #[garde(range(min = 1, max = MAX_AMOUNT))]
    amount: i64,
    #[garde(custom(currency_code))]
    currency: String,
}

impl AmountInput {
    fn money(&self) -> Money {
        Money {
            amount: self.amount,
            currency: self.currency.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct ChargeRequest {
    #[garde(dive)]
    amount: AmountInput,
    #[garde(length(min = 1, max = 255), custom(token_chars))]
    token: String,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    #[garde(dive)]
    amount: AmountInput,
}

fn currency_code(value: &str, _: &()) -> garde::Result {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(garde::Error::new("must be an ISO 4217 code, in upper case"))
    }
}

fn token_chars(value: &str, _: &()) -> garde::Result {
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(garde::Error::new("must be letters, digits and '_'"))
    }
}

/// Whether `value` can be an idempotency key or an id in a path: 1 to 255 of
/// `[A-Za-z0-9_-]`.
fn is_plain_id(value: &str) -> bool {
    (1..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const OUTCOME_SORT_KEY: &str = "IDEMPOTENCY";
const IN_FLIGHT_SORT_KEY: &str = "INFLIGHT";
const CHARGE_SORT_KEY: &str = "CHARGE";
const TEST_MODE_KEY: &str = "TESTMODE";

fn outcome_partition(scope: &str, idempotency_key: &str) -> String {
    format!("IDEMPOTENCY#{scope}#{idempotency_key}")
}

fn outcome_key(scope: &str, idempotency_key: &str) -> Item {
    key(outcome_partition(scope, idempotency_key), OUTCOME_SORT_KEY)
}

fn in_flight_partition(scope: &str, idempotency_key: &str) -> String {
    format!("INFLIGHT#{scope}#{idempotency_key}")
}

fn in_flight_key(scope: &str, idempotency_key: &str) -> Item {
    key(
        in_flight_partition(scope, idempotency_key),
        IN_FLIGHT_SORT_KEY,
    )
}

fn charge_partition(charge_id: &str) -> String {
    format!("CHARGE#{charge_id}")
}

fn charge_key(charge_id: &str) -> Item {
    key(charge_partition(charge_id), CHARGE_SORT_KEY)
}

fn test_mode_key() -> Item {
    key(TEST_MODE_KEY.to_owned(), TEST_MODE_KEY)
}

fn expires_at() -> i64 {
    Utc::now().timestamp() + LEDGER_RETENTION_SECONDS
}

fn internal(error: impl std::fmt::Display) -> Problem {
    Problem::internal(error)
}

fn text_response(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Answers one request. Never fails: every error is an answer.
pub async fn handle(sandbox: &Sandbox, request: Request) -> Response<Body> {
    answer(request, async |request, _, _| sandbox.route(request).await).await
}

impl Sandbox {
    /// A sandbox on its ledger table, accepting the key `secret` holds (read now).
    pub async fn new(ledger: Table, secret: ApiKeySecret) -> Result<Self, SecretError> {
        let key = secret.read().await?;
        Ok(Self {
            ledger,
            secret,
            known: RwLock::new(KnownKey {
                key,
                read_at: Instant::now(),
            }),
            key_refresh: DEFAULT_KEY_REFRESH,
        })
    }

    /// The same sandbox checking an unknown key against the secret at most every `every`.
    pub fn refreshing_key_every(mut self, every: Duration) -> Self {
        self.key_refresh = every;
        self
    }

    pub fn ledger(&self) -> &Table {
        &self.ledger
    }

    async fn route(&self, request: &Request) -> Result<Response<Body>, Problem> {
        let method = request.method().as_str();
        let segments: Vec<&str> = request
            .uri()
            .path()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect();
        if let ("GET", ["health"]) = (method, segments.as_slice()) {
            return health("payment-sandbox", &self.ledger).await;
        }
        // Before test mode: a caller without the key must not use up queued failures.
        self.authenticate(request).await?;
        match (method, segments.as_slice()) {
            // Exempt from test mode, or an outage could never be ended.
            ("GET", ["v1", "test-mode"]) => {
                Ok(json_response(StatusCode::OK, &self.test_mode().await?))
            }
            ("PUT", ["v1", "test-mode"]) => self.set_test_mode(request).await,
            (method, path) => {
                let mode = self.test_mode().await?;
                self.refuse_if_failing(&mode).await?;
                match (method, path) {
                    ("POST", ["v1", "charges"]) => {
                        let key = idempotency_key(request)?;
                        self.write(CHARGE_SCOPE, &key, &mode, self.create_charge(request, &key))
                            .await
                    }
                    ("GET", ["v1", "charges"]) => self.find_charge(request, &mode).await,
                    ("POST", ["v1", "charges", charge_id, "refunds"]) => {
                        let key = idempotency_key(request)?;
                        self.write(
                            REFUND_SCOPE,
                            &key,
                            &mode,
                            self.refund(request, &key, charge_id),
                        )
                        .await
                    }
                    _ => Err(Problem::not_found(format!(
                        "no route {method} {}",
                        request.uri().path()
                    ))),
                }
            }
        }
    }

    fn known_key(&self) -> (ApiKey, Instant) {
        let known = match self.known.read() {
            Ok(known) => known,
            Err(poisoned) => poisoned.into_inner(),
        };
        (known.key.clone(), known.read_at)
    }

    /// Accepts the current key only. A key that does not match may be a rotated one this
    /// instance has not read yet: the secret is read again, if it was not just read.
    async fn authenticate(&self, request: &Request) -> Result<(), Problem> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .filter(|key| !key.is_empty())
            .ok_or_else(Problem::unauthorized)?;
        let (key, read_at) = self.known_key();
        if key.matches(presented) {
            return Ok(());
        }
        if read_at.elapsed() < self.key_refresh {
            return Err(Problem::unauthorized());
        }
        match self.secret.read().await {
            Ok(fresh) => {
                let matches = fresh.matches(presented);
                let mut known = match self.known.write() {
                    Ok(known) => known,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *known = KnownKey {
                    key: fresh,
                    read_at: Instant::now(),
                };
                if matches {
                    Ok(())
                } else {
                    Err(Problem::unauthorized())
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "could not re-read the API key");
                Err(Problem::unauthorized())
            }
        }
    }

    async fn test_mode(&self) -> Result<TestMode, Problem> {
        let stored: Option<TestModeItem> = self
            .ledger
            .get(test_mode_key(), Read::Latest)
            .await
            .map_err(internal)?;
        Ok(stored
            .map(|item| TestMode {
                outage: item.outage,
                fail_next: item.fail_next,
                delay_ms: item.delay_ms,
                fail_after_acting: item.fail_after_acting,
            })
            .unwrap_or_default())
    }

    /// Replaces the switches; a field left out is off. A singleton that only this route
    /// writes whole, so the last writer wins by design.
    async fn set_test_mode(&self, request: &Request) -> Result<Response<Body>, Problem> {
        let mode: TestMode = json_body(request, MAX_BODY_BYTES)?;
        let number = |value: u64| AttributeValue::N(value.to_string());
        self.ledger
            .client()
            .update_item()
            .table_name(self.ledger.name())
            .set_key(Some(test_mode_key()))
            .update_expression("SET outage = :outage, failNext = :failNext, delayMs = :delayMs, failAfterActing = :failAfterActing")
            .expression_attribute_values(":outage", AttributeValue::Bool(mode.outage))
            .expression_attribute_values(":failNext", number(mode.fail_next))
            .expression_attribute_values(":delayMs", number(mode.delay_ms))
            .expression_attribute_values(":failAfterActing", number(mode.fail_after_acting))
            .send()
            .await
            .map_err(|e| internal(dynamo_error(e)))?;
        tracing::info!(?mode, "test mode set");
        Ok(json_response(StatusCode::OK, &mode))
    }

    /// What test mode makes of a request before anything is processed: a 503.
    async fn refuse_if_failing(&self, mode: &TestMode) -> Result<(), Problem> {
        if mode.outage {
            return Err(Problem::service_unavailable("test mode: outage"));
        }
        if mode.fail_next > 0 && self.take_one("failNext").await? {
            return Err(Problem::service_unavailable("test mode: failNext"));
        }
        Ok(())
    }

    /// A charge or a refund under `key`: the stored outcome's replay if there is one,
    /// else `act` while holding the key (a second request under it meanwhile is a 409),
    /// after test mode's delay, and with its failure after acting.
    async fn write(
        &self,
        scope: &str,
        key: &str,
        mode: &TestMode,
        act: impl Future<Output = Result<Response<Body>, Problem>>,
    ) -> Result<Response<Body>, Problem> {
        if !self.hold_key(scope, key).await? {
            return Ok(key_in_use());
        }
        hold(mode).await;
        let answer = act.await;
        if let Err(error) = self.release_key(scope, key).await {
            // The hold expires on its own; this only makes a retry wait for it.
            tracing::warn!(error = %error, key, "could not release the idempotency key");
        }
        let answer = answer?;
        if answer.status().is_success()
            && mode.fail_after_acting > 0
            && self.take_one("failAfterActing").await?
        {
            tracing::info!(key, "test mode: failing after acting");
            return Err(Problem::internal("test mode: failAfterActing"));
        }
        Ok(answer)
    }

    /// Takes the key for this request, unless another request holds it.
    async fn hold_key(&self, scope: &str, key: &str) -> Result<bool, Problem> {
        let now = Utc::now().timestamp();
        let result = self
            .ledger
            .client()
            .put_item()
            .table_name(self.ledger.name())
            .set_item(Some(HashMap::from([
                (
                    "pk".to_owned(),
                    AttributeValue::S(in_flight_partition(scope, key)),
                ),
                (
                    "sk".to_owned(),
                    AttributeValue::S(IN_FLIGHT_SORT_KEY.to_owned()),
                ),
                (
                    "heldUntil".to_owned(),
                    AttributeValue::N((now + IN_FLIGHT_SECONDS).to_string()),
                ),
                (
                    "expiresAt".to_owned(),
                    AttributeValue::N((now + IN_FLIGHT_SECONDS).to_string()),
                ),
            ])))
            .condition_expression("attribute_not_exists(pk) OR heldUntil < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(internal(dynamo_error(error))),
        }
    }

    async fn release_key(&self, scope: &str, key: &str) -> Result<(), TableError> {
        self.ledger
            .client()
            .delete_item()
            .table_name(self.ledger.name())
            .set_key(Some(in_flight_key(scope, key)))
            .send()
            .await
            .map(|_| ())
            .map_err(dynamo_error)
    }

    /// Whether a request under `key` is being processed now.
    async fn key_is_held(&self, scope: &str, key: &str) -> Result<bool, Problem> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Held {
            held_until: i64,
        }
        let held: Option<Held> = self
            .ledger
            .get(in_flight_key(scope, key), Read::Latest)
            .await
            .map_err(internal)?;
        Ok(held.is_some_and(|held| held.held_until >= Utc::now().timestamp()))
    }

    /// Takes one of the failures queued under `switch`, if one is left: a conditional
    /// decrement, so two requests never take the same one.
    async fn take_one(&self, switch: &str) -> Result<bool, Problem> {
        let result = self
            .ledger
            .client()
            .update_item()
            .table_name(self.ledger.name())
            .set_key(Some(test_mode_key()))
            .update_expression("SET #switch = #switch - :one")
            .condition_expression("#switch > :zero")
            .expression_attribute_names("#switch", switch)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(internal(dynamo_error(error))),
        }
    }

    async fn stored_outcome(
        &self,
        scope: &str,
        idempotency_key: &str,
    ) -> Result<Option<StoredOutcome>, Problem> {
        self.ledger
            .get(outcome_key(scope, idempotency_key), Read::Latest)
            .await
            .map_err(internal)
    }

    /// The stored outcome again, if the request is the one that produced it.
    fn replay(stored: &StoredOutcome, fingerprint: &str) -> Result<Response<Body>, Problem> {
        if stored.fingerprint != fingerprint {
            return Err(Problem::unprocessable(
                "this Idempotency-Key was used with another request",
            ));
        }
        let mut response = text_response(stored.status, stored.body.clone());
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        Ok(response)
    }

    /// A conditional write under `idempotency_key` lost to another request with the same
    /// key: that request's outcome is the answer.
    async fn after_lost_race(
        &self,
        scope: &str,
        idempotency_key: &str,
        fingerprint: &str,
    ) -> Result<Response<Body>, Problem> {
        match self.stored_outcome(scope, idempotency_key).await? {
            Some(stored) => Self::replay(&stored, fingerprint),
            // Still being written by the other request; by the retry, it will be stored.
            None => Err(Problem::service_unavailable(
                "a request with this Idempotency-Key is in progress; retry",
            )),
        }
    }

    fn outcome(
        scope: &str,
        idempotency_key: &str,
        fingerprint: String,
        status: StatusCode,
        body: &Value,
        charge_id: Option<String>,
    ) -> StoredOutcome {
        StoredOutcome {
            pk: outcome_partition(scope, idempotency_key),
            sk: OUTCOME_SORT_KEY.to_owned(),
            fingerprint,
            status: status.as_u16(),
            body: body.to_string(),
            charge_id,
            created_at: timestamp(Utc::now()),
            expires_at: expires_at(),
        }
    }

    async fn create_charge(
        &self,
        request: &Request,
        idempotency_key: &str,
    ) -> Result<Response<Body>, Problem> {
        let idempotency_key = idempotency_key.to_owned();
        let input: ChargeRequest = json_body(request, MAX_BODY_BYTES)?;
        let amount = input.amount.money();
        let fingerprint =
            json!({"amount": amount.amount, "currency": amount.currency, "token": input.token})
                .to_string();
        if let Some(stored) = self.stored_outcome(CHARGE_SCOPE, &idempotency_key).await? {
            return Self::replay(&stored, &fingerprint);
        }
        if input.token.starts_with(DECLINED_TOKEN_PREFIX) {
            let body = json!({"error": "card_declined", "message": "the card was declined"});
            let outcome = Self::outcome(
                CHARGE_SCOPE,
                &idempotency_key,
                fingerprint.clone(),
                StatusCode::PAYMENT_REQUIRED,
                &body,
                None,
            );
            return match self.ledger.put_now(&outcome, Condition::Absent).await {
                Ok(()) => {
                    tracing::info!(idempotency_key, "declined");
                    Ok(json_response(StatusCode::PAYMENT_REQUIRED, &body))
                }
                Err(TableError::Conflict) => {
                    self.after_lost_race(CHARGE_SCOPE, &idempotency_key, &fingerprint)
                        .await
                }
                Err(other) => Err(internal(other)),
            };
        }
        let charge_id = format!("ch_{}", new_ulid().to_lowercase());
        let charge = ChargeRecord {
            pk: charge_partition(&charge_id),
            sk: CHARGE_SORT_KEY.to_owned(),
            id: charge_id,
            amount,
            idempotency_key: idempotency_key.clone(),
            refunded: false,
            refund_id: None,
            created_at: timestamp(Utc::now()),
            expires_at: expires_at(),
        };
        let body = charge.view();
        let outcome = Self::outcome(
            CHARGE_SCOPE,
            &idempotency_key,
            fingerprint.clone(),
            StatusCode::CREATED,
            &body,
            Some(charge.id.clone()),
        );
        let mut transaction = self.ledger.transaction();
        transaction.write(
            self.ledger
                .put(&outcome, Condition::Absent)
                .map_err(internal)?,
        );
        transaction.write(
            self.ledger
                .put(&charge, Condition::Absent)
                .map_err(internal)?,
        );
        match transaction.commit(self.ledger.client()).await {
            Ok(()) => {
                tracing::info!(idempotency_key, charge_id = %charge.id, "charged");
                Ok(json_response(StatusCode::CREATED, &body))
            }
            Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                self.after_lost_race(CHARGE_SCOPE, &idempotency_key, &fingerprint)
                    .await
            }
            Err(other) => Err(internal(other)),
        }
    }

    async fn charge_record(&self, charge_id: &str) -> Result<Option<ChargeRecord>, Problem> {
        self.ledger
            .get(charge_key(charge_id), Read::Latest)
            .await
            .map_err(internal)
    }

    async fn find_charge(
        &self,
        request: &Request,
        mode: &TestMode,
    ) -> Result<Response<Body>, Problem> {
        let idempotency_key = query_param(request, "idempotencyKey")
            .filter(|key| is_plain_id(key))
            .ok_or_else(|| {
                Problem::bad_request("the query parameter idempotencyKey is required")
            })?;
        if self.key_is_held(CHARGE_SCOPE, &idempotency_key).await? {
            return Ok(key_in_use());
        }
        hold(mode).await;
        let not_found =
            || Problem::not_found(format!("no charge under Idempotency-Key {idempotency_key}"));
        let charge_id = self
            .stored_outcome(CHARGE_SCOPE, &idempotency_key)
            .await?
            .and_then(|stored| stored.charge_id)
            .ok_or_else(not_found)?;
        let charge = self
            .charge_record(&charge_id)
            .await?
            .ok_or_else(|| internal(format!("charge {charge_id} is missing from the ledger")))?;
        Ok(json_response(StatusCode::OK, &charge.view()))
    }

    async fn refund(
        &self,
        request: &Request,
        idempotency_key: &str,
        charge_id: &str,
    ) -> Result<Response<Body>, Problem> {
        if !is_plain_id(charge_id) {
            return Err(Problem::not_found(format!("no charge {charge_id}")));
        }
        let idempotency_key = idempotency_key.to_owned();
        let input: RefundRequest = json_body(request, MAX_BODY_BYTES)?;
        let amount = input.amount.money();
        let fingerprint =
            json!({"chargeId": charge_id, "amount": amount.amount, "currency": amount.currency})
                .to_string();
        if let Some(stored) = self.stored_outcome(REFUND_SCOPE, &idempotency_key).await? {
            return Self::replay(&stored, &fingerprint);
        }
        let charge = self
            .charge_record(charge_id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no charge {charge_id}")))?;
        if charge.amount != amount {
            return Err(Problem::unprocessable(format!(
                "full refunds only: charge {charge_id} is {} {}",
                charge.amount.amount, charge.amount.currency
            )));
        }
        if charge.refunded {
            return Err(already_refunded(charge_id));
        }
        let refund_id = format!("re_{}", new_ulid().to_lowercase());
        let body =
            json!({"id": refund_id, "object": "refund", "chargeId": charge_id, "amount": amount});
        let outcome = Self::outcome(
            REFUND_SCOPE,
            &idempotency_key,
            fingerprint.clone(),
            StatusCode::OK,
            &body,
            Some(charge_id.to_owned()),
        );
        let mut transaction = self.ledger.transaction();
        transaction.write(
            self.ledger
                .put(&outcome, Condition::Absent)
                .map_err(internal)?,
        );
        transaction.write(self.mark_refunded(charge_id, &refund_id)?);
        match transaction.commit(self.ledger.client()).await {
            Ok(()) => {
                tracing::info!(idempotency_key, charge_id, refund_id, "refunded");
                Ok(json_response(StatusCode::OK, &body))
            }
            Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                match self.stored_outcome(REFUND_SCOPE, &idempotency_key).await? {
                    Some(stored) => Self::replay(&stored, &fingerprint),
                    // Not this key's refund: another key refunded the charge meanwhile.
                    None => Err(already_refunded(charge_id)),
                }
            }
            Err(other) => Err(internal(other)),
        }
    }

    /// The write that marks a charge refunded, if it is not yet.
    fn mark_refunded(
        &self,
        charge_id: &str,
        refund_id: &str,
    ) -> Result<TransactWriteItem, Problem> {
        let update = Update::builder()
            .table_name(self.ledger.name())
            .set_key(Some(charge_key(charge_id)))
            .update_expression("SET refunded = :true, refundId = :refundId, refundedAt = :at")
            .condition_expression("attribute_exists(pk) AND refunded = :false")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":refundId", AttributeValue::S(refund_id.to_owned()))
            .expression_attribute_values(":at", AttributeValue::S(timestamp(Utc::now())))
            .build()
            .map_err(|e| internal(dynamo_error(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Test mode's delay, before a request is processed.
async fn hold(mode: &TestMode) {
    if mode.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(mode.delay_ms.min(MAX_DELAY_MS))).await;
    }
}

/// The answer to a request under a key another request is being processed under.
fn key_in_use() -> Response<Body> {
    json_response(
        StatusCode::CONFLICT,
        &json!({"error": crate::provider::KEY_IN_USE, "message": "a request with this Idempotency-Key is being processed; retry later"}),
    )
}

fn already_refunded(charge_id: &str) -> Problem {
    Problem::conflict(format!("charge {charge_id} is refunded already"))
}

/// The `Idempotency-Key` header every write requires.
fn idempotency_key(request: &Request) -> Result<String, Problem> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| is_plain_id(key))
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::bad_request(
                "an Idempotency-Key header of 1 to 255 characters of A-Z, a-z, 0-9, '_' and '-' is required",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_are_plain_and_bounded() {
        assert!(is_plain_id("01JDMB4W7K2Q9F3R5T8V1X6Z0N"));
        assert!(is_plain_id("refund-01JDMB4W7K2Q9F3R5T8V1X6Z0N"));
        assert!(is_plain_id("ch_01jdmb4w7k2q9f3r5t8v1x6z0n"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("a b"));
        assert!(!is_plain_id("../x"));
        assert!(!is_plain_id(&"k".repeat(256)));
    }

    #[test]
    fn test_mode_takes_bounded_switches_and_defaults_to_off() {
        let mode: TestMode = serde_json::from_str("{}").unwrap();
        assert_eq!(mode, TestMode::default());
        let mode: TestMode =
            serde_json::from_str(r#"{"outage": true, "failNext": 2, "delayMs": 300}"#).unwrap();
        assert!(mode.outage && mode.fail_next == 2 && mode.delay_ms == 300);
        assert!(mode.validate().is_ok());
        let too_slow = TestMode {
            delay_ms: MAX_DELAY_MS + 1,
            ..TestMode::default()
        };
        assert!(too_slow.validate().is_err());
        assert!(serde_json::from_str::<TestMode>(r#"{"explode": true}"#).is_err());
    }

    #[test]
    fn amounts_are_positive_in_an_upper_case_currency() {
        let amount = |amount, currency: &str| AmountInput {
            amount,
            currency: currency.into(),
        };
        assert!(amount(1, "USD").validate().is_ok());
        assert!(amount(0, "USD").validate().is_err());
        assert!(amount(5, "usd").validate().is_err());
        assert!(amount(5, "US").validate().is_err());
    }
}
