//! The way out to the browsers: API Gateway's Management API (`POST @connections/{id}`)
//! on the WebSocket API's own stage, behind a narrow port so the consumer's tests can
//! watch what it sends without a socket.

use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

/// What a push can meet.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is closed (API Gateway's 410): its keys can go.
    #[error("the connection is gone")]
    Gone,
    /// Anything else (throttled, a network failure): the event is tried again later.
    #[error("push failed: {0}")]
    Failed(String),
}

pub trait Push: Sync {
    /// Sends `message` (a JSON text) on the connection.
    fn send(
        &self,
        connection_id: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), PushError>> + Send;
}

/// The Management API of one WebSocket API stage.
pub struct ManagementApi {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ManagementApi {
    /// `endpoint` is the stage's management URL: on AWS
    /// `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`, locally shop-local's.
    pub fn new(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint.trim_end_matches('/'))
            .build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

impl Push for ManagementApi {
    async fn send(&self, connection_id: &str, message: &str) -> Result<(), PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(error))
                if matches!(error.err(), PostToConnectionError::GoneException(_)) =>
            {
                Err(PushError::Gone)
            }
            Err(error) => Err(PushError::Failed(DisplayErrorContext(error).to_string())),
        }
    }
}
