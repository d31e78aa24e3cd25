//! One DynamoDB transaction: the state change, the events it raises (the outbox) and,
//! for consumers, the processed-event marker. All or nothing. It also carries the business
//! facts the change makes true, for whoever commits it to count once it has committed.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use shop_events::{DomainEvent, Envelope};

use crate::metrics::Count;
use crate::outbox::OutboxEvent;

/// DynamoDB's limit on items in one transaction.
pub const MAX_ITEMS: usize = 100;

#[derive(Debug, Clone)]
pub struct Transaction {
    table: String,
    items: Vec<TransactWriteItem>,
    events: Vec<OutboxEvent>,
    counts: Vec<Count>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A condition did not hold; nothing was written. `failed` holds the positions (in
    /// the order items were added) whose condition failed.
    #[error("transaction cancelled: the condition of item(s) {failed:?} did not hold")]
    ConditionFailed { failed: Vec<usize> },
    /// Another transaction was writing the same items at the same moment; nothing was
    /// written, and trying again is the cure.
    #[error("transaction cancelled by a concurrent transaction on the same items")]
    TransactionConflict,
    #[error("transaction has {0} items, more than DynamoDB's {MAX_ITEMS}")]
    TooLarge(usize),
    #[error("could not encode an event: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("dynamodb: {0}")]
    Dynamo(String),
}

impl Transaction {
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            items: Vec::new(),
            events: Vec::new(),
            counts: Vec::new(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Adds a write and returns its position, to recognise its condition in a
    /// [`CommitError::ConditionFailed`].
    pub fn write(&mut self, item: TransactWriteItem) -> usize {
        self.items.push(item);
        self.items.len() - 1
    }

    /// Records an event in the outbox, in this transaction: it is published if and only
    /// if the state change commits.
    pub fn publish<T: DomainEvent>(&mut self, event: &Envelope<T>) -> Result<usize, CommitError> {
        let outbox = OutboxEvent::from_envelope(event)?;
        let position = self.write(outbox.put(&self.table));
        self.events.push(outbox);
        Ok(position)
    }

    /// The events recorded so far, in order.
    pub fn events(&self) -> &[OutboxEvent] {
        &self.events
    }

    /// A business fact this transaction makes true: counted if and only if it commits
    /// (the consumer harness counts it; see [`crate::metrics`]). Writes nothing.
    pub fn count(&mut self, fact: Count) {
        self.counts.push(fact);
    }

    /// [`Self::count`] for each of `facts` (none, for a `None`).
    pub fn count_all(&mut self, facts: impl IntoIterator<Item = Count>) {
        self.counts.extend(facts);
    }

    /// The facts to count once this transaction has committed.
    pub fn counts(&self) -> &[Count] {
        &self.counts
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub async fn commit(self, client: &Client) -> Result<(), CommitError> {
        match self.items.len() {
            0 => return Ok(()),
            n if n > MAX_ITEMS => return Err(CommitError::TooLarge(n)),
            _ => {}
        }
        let result = client
            .transact_write_items()
            // The SDK resends a request whose answer was lost; with the token DynamoDB
            // answers the resend with the first attempt's success instead of failing the
            // conditions that attempt already satisfied.
            .client_request_token(shop_events::new_ulid())
            .set_transact_items(Some(self.items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let failed: Vec<usize> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                        .map(|(position, _)| position)
                        .collect();
                    let conflicted = cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"));
                    if !failed.is_empty() {
                        Err(CommitError::ConditionFailed { failed })
                    } else if conflicted {
                        Err(CommitError::TransactionConflict)
                    } else {
                        Err(CommitError::Dynamo(format!(
                            "{}",
                            DisplayErrorContext(cancelled)
                        )))
                    }
                }
                other => Err(CommitError::Dynamo(format!(
                    "{}",
                    DisplayErrorContext(other)
                ))),
            },
            Err(other) => Err(CommitError::Dynamo(format!(
                "{}",
                DisplayErrorContext(&other)
            ))),
        }
    }
}
