//! What the running stack gave up on, and sending it back (DESIGN §7, README runbook):
//! the messages in the dead-letter queues (`shop-local dlq list | redrive`) and the events
//! the outbox relays parked (`shop-local events parked | replay`). The same operations on
//! AWS are `local/scripts/dead-letters`.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::Value;
use shop_platform::relay::{EventBridgePublisher, parked, replay_parked};

use crate::client::call_local;

/// What a command needs to know of the running stack: `/_local/stats`.
pub struct Stack {
    stats: Value,
    config: aws_config::SdkConfig,
}

impl Stack {
    pub async fn of(run_dir: &std::path::Path) -> Result<Self, String> {
        let stats = call_local(run_dir, http::Method::GET, "stats", bytes::Bytes::new()).await?;
        let endpoint = stats["motoEndpoint"]
            .as_str()
            .ok_or("the stack reports no emulator")?
            .to_owned();
        Ok(Self::new(stats, crate::stack::sdk_config(&endpoint).await))
    }

    /// From the stack's own stats, for the operations view that the stack serves itself.
    pub fn new(stats: Value, config: aws_config::SdkConfig) -> Self {
        Self { stats, config }
    }

    fn list(&self, key: &str) -> Vec<Value> {
        self.stats[key].as_array().cloned().unwrap_or_default()
    }

    /// The dead-letter queues, or the one whose logical id (or its last part) is `name`.
    fn dead_letter_queues(&self, name: Option<&str>) -> Result<Vec<Value>, String> {
        let queues: Vec<Value> = self
            .list("queues")
            .into_iter()
            .filter(|q| q["deadLetter"] == true)
            .filter(|q| name.is_none_or(|name| names(&q["logicalId"], name)))
            .collect();
        if queues.is_empty()
            && let Some(name) = name
        {
            let known: Vec<String> = self
                .list("queues")
                .iter()
                .filter(|q| q["deadLetter"] == true)
                .filter_map(|q| q["logicalId"].as_str().map(str::to_owned))
                .collect();
            return Err(format!(
                "no dead-letter queue {name}; there are {}",
                known.join(", ")
            ));
        }
        Ok(queues)
    }

    /// The capabilities' tables (where parked events are kept), or those of `capability`.
    fn tables(&self, capability: Option<&str>) -> Vec<(String, String)> {
        self.list("tables")
            .iter()
            .filter_map(|t| {
                let id = t["logicalId"].as_str()?;
                let name = t["name"].as_str()?;
                let (owner, _) = id.split_once('/')?;
                capability
                    .is_none_or(|c| c == owner)
                    .then(|| (id.to_owned(), name.to_owned()))
            })
            .collect()
    }
}

fn sqs_error<E: std::error::Error + 'static>(error: E) -> String {
    format!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

/// Whether `logical_id` (`payment/PaymentDLQ`) is what a person called `name`.
fn names(logical_id: &Value, name: &str) -> bool {
    logical_id
        .as_str()
        .is_some_and(|id| id == name || id.rsplit('/').next() == Some(name))
}

/// A one-line summary of a dead letter: the event it carries, as far as it reads.
fn summary(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(event) => format!(
            "{} {} event {} order {}",
            event["source"].as_str().unwrap_or("?"),
            event["detail-type"].as_str().unwrap_or("?"),
            event["detail"]["metadata"]["eventId"]
                .as_str()
                .unwrap_or("?"),
            event["detail"]["data"]["orderId"]
                .as_str()
                .or(event["detail"]["data"]["productId"].as_str())
                .unwrap_or("-"),
        ),
        Err(_) => format!(
            "not an event: {}",
            body.chars().take(80).collect::<String>()
        ),
    }
}

/// Every message of a queue, read without taking them away: received with a visibility
/// timeout long enough to see each once, then made visible again at once.
async fn peek(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
    let mut seen = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_error)?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        seen.extend(messages);
    }
    for message in &seen {
        if let Some(handle) = &message.receipt_handle {
            let _ = sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
    Ok(seen)
}

/// One dead letter, as a person reads it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    pub receives: String,
    /// The event it carries, in one line (never the message itself: it may hold a token).
    pub summary: String,
}

/// A dead-letter queue and what it holds.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterQueue {
    pub queue: String,
    pub messages: Vec<DeadLetter>,
}

/// What a redrive moved, from which dead-letter queue back to which queue.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    pub queue: String,
    pub moved: usize,
    pub to: String,
}

impl Stack {
    /// What each dead-letter queue holds (or the one named `queue`).
    pub async fn dead_letters(&self, queue: Option<&str>) -> Result<Vec<DeadLetterQueue>, String> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let mut found = Vec::new();
        for dlq in self.dead_letter_queues(queue)? {
            let url = dlq["url"].as_str().unwrap_or_default();
            let messages = peek(&sqs, url)
                .await?
                .iter()
                .map(|message| DeadLetter {
                    message_id: message.message_id.clone().unwrap_or_default(),
                    receives: message
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .cloned()
                        .unwrap_or_else(|| "?".into()),
                    summary: summary(message.body.as_deref().unwrap_or("")),
                })
                .collect();
            found.push(DeadLetterQueue {
                queue: dlq["logicalId"].as_str().unwrap_or("?").to_owned(),
                messages,
            });
        }
        Ok(found)
    }

    /// Every message of the dead-letter queue `queue` back to the queue it came from (the
    /// one whose redrive policy names it), as SQS's message-move task does.
    pub async fn redrive(&self, queue: &str) -> Result<Vec<Redriven>, String> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let mut done = Vec::new();
        for dlq in self.dead_letter_queues(Some(queue))? {
            let arn = dlq["arn"].as_str().unwrap_or_default();
            let source = self
                .list("queues")
                .into_iter()
                .find(|q| q["redrivesTo"] == arn)
                .ok_or_else(|| format!("no queue redrives to {arn}"))?;
            let (from, to) = (
                dlq["url"].as_str().unwrap_or_default(),
                source["url"].as_str().unwrap_or_default(),
            );
            let mut moved = 0;
            loop {
                let received = sqs
                    .receive_message()
                    .queue_url(from)
                    .max_number_of_messages(10)
                    .visibility_timeout(60)
                    .send()
                    .await
                    .map_err(sqs_error)?;
                let messages = received.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    // Sent before it is deleted: a failure in between leaves a duplicate,
                    // which the consumer's dedup absorbs, never a loss.
                    sqs.send_message()
                        .queue_url(to)
                        .message_body(message.body.clone().unwrap_or_default())
                        .send()
                        .await
                        .map_err(sqs_error)?;
                    if let Some(handle) = &message.receipt_handle {
                        sqs.delete_message()
                            .queue_url(from)
                            .receipt_handle(handle)
                            .send()
                            .await
                            .map_err(sqs_error)?;
                    }
                    moved += 1;
                }
            }
            done.push(Redriven {
                queue: dlq["logicalId"].as_str().unwrap_or("?").to_owned(),
                moved,
                to: source["logicalId"].as_str().unwrap_or("?").to_owned(),
            });
        }
        Ok(done)
    }
}

/// `shop-local dlq list [QUEUE]`: what each dead-letter queue holds.
pub async fn list(run_dir: &std::path::Path, queue: Option<&str>) -> Result<(), String> {
    let stack = Stack::of(run_dir).await?;
    for dlq in stack.dead_letters(queue).await? {
        println!("{}: {} message(s)", dlq.queue, dlq.messages.len());
        for message in &dlq.messages {
            println!(
                "  {}  {}  (received {} times)",
                message.message_id, message.summary, message.receives
            );
        }
    }
    Ok(())
}

/// `shop-local dlq redrive QUEUE`: every message of the dead-letter queue back to the queue
/// it came from.
pub async fn redrive(run_dir: &std::path::Path, queue: &str) -> Result<(), String> {
    let stack = Stack::of(run_dir).await?;
    for done in stack.redrive(queue).await? {
        println!(
            "{}: {} message(s) back to {}",
            done.queue, done.moved, done.to
        );
    }
    Ok(())
}

/// `shop-local events parked [CAPABILITY]`: the events the relays parked.
pub async fn list_parked(
    run_dir: &std::path::Path,
    capability: Option<&str>,
) -> Result<(), String> {
    let stack = Stack::of(run_dir).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.config);
    for (id, table) in stack.tables(capability) {
        let parked = parked(&dynamodb, &table).await?;
        if parked.is_empty() {
            continue;
        }
        println!("{id}: {} parked event(s)", parked.len());
        for event in parked {
            let what = match &event.event {
                Some(e) => format!("{} {} event {}", e.source, e.detail_type, e.event_id),
                None => "an unreadable outbox record".to_owned(),
            };
            println!(
                "  {}  {what}  {}: {}",
                event.parked_at, event.reason, event.detail
            );
        }
    }
    Ok(())
}

/// `shop-local events replay [CAPABILITY]`: publishes the parked events again, removing each
/// once the bus took it.
pub async fn replay(run_dir: &std::path::Path, capability: Option<&str>) -> Result<(), String> {
    let stack = Stack::of(run_dir).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.config);
    let bus = stack
        .list("buses")
        .first()
        .and_then(|b| b["name"].as_str().map(str::to_owned))
        .ok_or("the stack has no bus")?;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&stack.config), bus);
    let mut kept = 0;
    for (id, table) in stack.tables(capability) {
        let replay = replay_parked(&dynamodb, &table, &publisher).await?;
        if replay.published.is_empty() && replay.kept.is_empty() {
            continue;
        }
        println!(
            "{id}: {} published, {} kept",
            replay.published.len(),
            replay.kept.len()
        );
        for (parked, why) in &replay.kept {
            println!("  kept {parked}: {why}");
        }
        kept += replay.kept.len();
    }
    if kept > 0 {
        return Err(format!("{kept} parked event(s) could not be published"));
    }
    Ok(())
}
