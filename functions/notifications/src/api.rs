//! The WebSocket API's routes (DESIGN §6, live updates), one function for all of them as
//! each capability has one function for its HTTP routes: parse, decide, persist, answer.
//!
//! - `$connect`: the token in `?token=` must pass the HTTP authorizer's checks; anything
//!   else is answered 401, and API Gateway then refuses the connection before it exists.
//! - `$disconnect`: the connection's keys go (API Gateway sends it best effort: TTL and
//!   410 Gone on the next push catch the rest).
//! - `$default`: a client's message, answered on its connection (the route has a route
//!   response): a subscription to every order for an admin, a ping, or an error.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use chrono::Utc;
use shop_platform::jwt::TokenCheck;
use tracing::Instrument;

use crate::domain::{Connection, Decision, Identity, Reply, decide};
use crate::store::ConnectionStore;

pub struct App<T> {
    pub store: ConnectionStore,
    pub tokens: T,
}

/// Answers one route's event; never fails: what goes wrong is a status API Gateway acts on.
pub async fn handle<T: TokenCheck>(
    app: &App<T>,
    request: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &request.request_context;
    let Some(connection_id) = context.connection_id.as_deref().filter(|id| !id.is_empty()) else {
        tracing::error!("an event without a connection id");
        return answer(400, None);
    };
    let route = context.route_key.as_deref().unwrap_or("$default");
    let span = tracing::info_span!("websocket", route, connection_id);
    async {
        match route {
            "$connect" => connect(app, connection_id, &request).await,
            "$disconnect" => disconnect(app, connection_id).await,
            _ => message(app, connection_id, request.body.as_deref().unwrap_or("")).await,
        }
    }
    .instrument(span)
    .await
}

async fn connect<T: TokenCheck>(
    app: &App<T>,
    connection_id: &str,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(token) = request.query_string_parameters.first("token") else {
        tracing::info!("refused: no token");
        return answer(401, None);
    };
    let now = Utc::now();
    let claims = match app.tokens.check(token, now.timestamp()).await {
        Ok(claims) => claims,
        Err(refused) => {
            tracing::info!(reason = %refused, "refused: the token does not pass");
            return answer(401, None);
        }
    };
    let Some(identity) = Identity::from_claims(&claims) else {
        tracing::info!("refused: the token names no user");
        return answer(401, None);
    };
    let connection = Connection::open(connection_id, identity, now);
    match app.store.open(&connection).await {
        Ok(()) => {
            tracing::info!(user_id = %connection.user_id, admin = connection.admin, "connected");
            answer(200, None)
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot record the connection");
            answer(500, None)
        }
    }
}

async fn disconnect<T: TokenCheck>(app: &App<T>, connection_id: &str) -> ApiGatewayProxyResponse {
    let outcome = match app.store.find(connection_id).await {
        Ok(Some(connection)) => app.store.close(&connection).await,
        Ok(None) => Ok(()),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => answer(200, None),
        Err(error) => {
            // The TTL and the next push's 410 Gone remove it all the same.
            tracing::warn!(error = %error, "cannot remove the connection now");
            answer(500, None)
        }
    }
}

async fn message<T: TokenCheck>(
    app: &App<T>,
    connection_id: &str,
    body: &str,
) -> ApiGatewayProxyResponse {
    let connection = match app.store.find(connection_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => {
            return reply(&Reply::Error {
                status: 410,
                message: "this connection is not open; connect again".into(),
            });
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot read the connection");
            return reply(&Reply::Error {
                status: 503,
                message: "try again".into(),
            });
        }
    };
    match decide(&connection, body) {
        Decision::Answer(answer) => reply(&answer),
        Decision::WatchAll(answer) => match app.store.watch_all(&connection).await {
            Ok(()) => {
                tracing::info!(user_id = %connection.user_id, "follows every order");
                reply(&answer)
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot record the subscription");
                reply(&Reply::Error {
                    status: 503,
                    message: "try again".into(),
                })
            }
        },
    }
}

fn reply(reply: &Reply) -> ApiGatewayProxyResponse {
    answer(200, serde_json::to_string(reply).ok())
}

fn answer(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = body.map(Body::Text);
    response
}
