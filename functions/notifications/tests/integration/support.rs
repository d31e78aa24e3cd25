//! What notifications' tests share: a table of their own in the binary's moto, the socket
//! function's handler with a token verifier on a key made here, the consumer with a
//! recording push port, and the sample events of `events/notifications/`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use notifications::api::{App, handle};
use notifications::consumer::{CONSUMER_NAME, Handler};
use notifications::domain::{Connection, Identity};
use notifications::push::{Push, PushError};
use notifications::store::ConnectionStore;
use serde_json::{Value, json};
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_platform::jwt::Verifier;
use shop_testing::{Table, sqs};

pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";
pub const CLIENT_ID: &str = "test-client";
/// The shopper the sample order events are about.
pub const SHOPPER: &str = "8d2e4f61-7a3b-4c5d-9e0f-1a2b3c4d5e6f";

/// An issuer of its own, as Cognito is to the deployed function.
pub struct Tokens {
    encoding: EncodingKey,
    pub jwks: JwkSet,
}

impl Tokens {
    pub fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        let jwks = serde_json::from_value(json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "test-1",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]}))
        .unwrap();
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwks,
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-1".into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A Cognito-shaped access token for `user`, valid for five minutes.
    pub fn access(&self, user: &str, admin: bool) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"sub": user, "iss": ISSUER, "client_id": CLIENT_ID,
                                "token_use": "access", "iat": now, "exp": now + 300});
        if admin {
            claims["cognito:groups"] = json!(["admin"]);
        }
        self.sign(&claims)
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(&self.jwks, ISSUER, &[CLIENT_ID.to_owned()]).unwrap()
    }
}

/// The Management API as the consumer sees it: what was sent where, and connections told
/// to answer 410 Gone or to fail.
#[derive(Default)]
pub struct RecordingPush {
    pub sent: Mutex<Vec<(String, Value)>>,
    pub gone: Mutex<BTreeSet<String>>,
    pub failing: Mutex<BTreeSet<String>>,
}

impl Push for RecordingPush {
    async fn send(&self, connection_id: &str, message: &str) -> Result<(), PushError> {
        if self.gone.lock().unwrap().contains(connection_id) {
            return Err(PushError::Gone);
        }
        if self.failing.lock().unwrap().contains(connection_id) {
            return Err(PushError::Failed("throttled".into()));
        }
        let message = serde_json::from_str(message).expect("a push is JSON");
        self.sent
            .lock()
            .unwrap()
            .push((connection_id.to_owned(), message));
        Ok(())
    }
}

impl RecordingPush {
    /// What each connection received, in order.
    pub fn received_by(&self, connection_id: &str) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == connection_id)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

pub struct Notifications {
    pub table: Table,
    pub store: ConnectionStore,
    pub tokens: Tokens,
    pub app: App<Verifier>,
    pub consumer: SqsConsumer<Handler<RecordingPush>>,
}

impl Notifications {
    pub async fn new() -> Self {
        let table = Table::new("notifications", &[]).await;
        let store = ConnectionStore::new(table.dynamodb.clone(), &table.name);
        let tokens = Tokens::new();
        Self {
            app: App {
                store: store.clone(),
                tokens: tokens.verifier(),
            },
            consumer: table.consumer(
                CONSUMER_NAME,
                Handler {
                    store: store.clone(),
                    push: RecordingPush::default(),
                },
            ),
            tokens,
            table,
            store,
        }
    }

    pub fn push(&self) -> &RecordingPush {
        &self.consumer.handler().push
    }

    /// One route's event through the socket function's handler: its status and body.
    pub async fn route(&self, event: Value) -> (i64, Option<Value>) {
        let request: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(event).expect("an API Gateway WebSocket event");
        let response = handle(&self.app, request).await;
        let body = response.body.map(|body| {
            let text = String::from_utf8_lossy(&body).into_owned();
            serde_json::from_str(&text).expect("an answer is JSON")
        });
        (response.status_code, body)
    }

    /// Opens a connection for `user` as `$connect` would, straight into the table.
    pub async fn connected(&self, id: &str, user: &str, admin: bool) -> Connection {
        let connection = Connection::open(
            id,
            Identity {
                user_id: user.into(),
                admin,
            },
            chrono::Utc::now(),
        );
        self.store.open(&connection).await.unwrap();
        connection
    }

    pub async fn deliver_one(&self, batch: &Value) -> Outcome {
        sqs::deliver(&self.consumer, batch).await
    }
}

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("notifications", name)
}

/// The sample `$connect`, with `token` (or none) and `connection_id`.
pub fn connect(token: Option<&str>, connection_id: &str) -> Value {
    let mut event = fixture("socket-connect.json");
    match token {
        Some(token) => {
            event["queryStringParameters"] = json!({"token": token});
            event["multiValueQueryStringParameters"] = json!({"token": [token]});
        }
        None => {
            event["queryStringParameters"] = Value::Null;
            event["multiValueQueryStringParameters"] = Value::Null;
        }
    }
    event["requestContext"]["connectionId"] = json!(connection_id);
    event
}

/// The sample client message, with `body`, on `connection_id`.
pub fn message(body: &str, connection_id: &str) -> Value {
    let mut event = fixture("socket-subscribe.json");
    event["body"] = json!(body);
    event["requestContext"]["connectionId"] = json!(connection_id);
    event
}

pub fn disconnect(connection_id: &str) -> Value {
    let mut event = fixture("socket-disconnect.json");
    event["requestContext"]["connectionId"] = json!(connection_id);
    event
}

/// A sample order event about `order_id` of `user`, published anew (its own event id).
pub fn order_event(sample: &str, order_id: &str, user: &str) -> Value {
    sqs::republished(&sqs::with_envelope(fixture(sample), |event| {
        event["detail"]["data"]["orderId"] = json!(order_id);
        event["detail"]["data"]["userId"] = json!(user);
    }))
}

pub fn new_order_id() -> String {
    shop_events::new_ulid()
}
