//! A capability's own table, read and written the way every capability does it: items
//! mapped with serde_dynamo, every write guarded by a condition, a change and the event it
//! raises committed together, and one error type for what can go wrong. What stays in a
//! capability's store is its own: its keys, its item shapes, its update expressions.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shop_events::{DomainEvent, Envelope};

use crate::pagination::{Key, PageRequest};
use crate::transaction::{CommitError, Transaction};

/// An item as DynamoDB holds it.
pub type Item = HashMap<String, AttributeValue>;

/// BatchGetItem's limit on keys per request.
const MAX_KEYS_PER_BATCH: usize = 100;
/// Keys DynamoDB left unprocessed (throttling) are asked for again this many times, with
/// a growing pause, before the read fails.
const UNPROCESSED_RETRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A write's condition did not hold, or a concurrent transaction wrote the same
    /// items: what was read is no longer what is stored. Nothing was written.
    #[error("the item changed since it was read")]
    Conflict,
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// An item that does not read back as what the capability writes.
    #[error("stored item does not read back: {0}")]
    Corrupt(String),
}

impl From<CommitError> for TableError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::ConditionFailed { .. } | CommitError::TransactionConflict => {
                TableError::Conflict
            }
            other => TableError::Dynamo(other.to_string()),
        }
    }
}

impl From<serde_dynamo::Error> for TableError {
    fn from(error: serde_dynamo::Error) -> Self {
        TableError::Corrupt(error.to_string())
    }
}

/// An SDK error with its whole chain of causes: the top-level message alone ("service
/// error") says nothing.
pub fn dynamo_error<E: std::error::Error + 'static>(error: E) -> TableError {
    TableError::Dynamo(DisplayErrorContext(error).to_string())
}

/// Whether a single conditional write (PutItem, UpdateItem, DeleteItem) failed because its
/// condition did not hold, rather than for any other reason.
pub fn condition_failed<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// The partition and sort key of the item [`Table::probe`] reads, which nobody writes.
const PROBE_KEY: &str = "PROBE";

/// The key of an item: every table of the shop has a `pk` and an `sk`.
pub fn key(partition: String, sort: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(partition)),
        ("sk".to_owned(), AttributeValue::S(sort.to_owned())),
    ])
}

/// Decodes an item as `T`; an item that does not fit is [`TableError::Corrupt`].
pub fn decode<T: DeserializeOwned>(item: Item) -> Result<T, TableError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// What must hold of the stored item for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No item has this key yet: whoever writes it first keeps it.
    Absent,
    /// The stored item is still at the version that was read.
    AtVersion(u64),
    /// The stored item, if any, is older than this version: the newest version wins,
    /// whatever order the writes come in.
    AbsentOrOlderThan(u64),
    /// Whatever is stored: for items no one reads back to decide a write (a removed
    /// WebSocket connection, gone whoever removes it first).
    Always,
}

impl Condition {
    /// The condition of writing back what was read at `read_version`, where 0 stands for
    /// an item that was never stored.
    pub fn unchanged_since(read_version: u64) -> Self {
        match read_version {
            0 => Condition::Absent,
            version => Condition::AtVersion(version),
        }
    }

    fn expression(self) -> Option<&'static str> {
        match self {
            Condition::Absent => Some("attribute_not_exists(pk)"),
            Condition::AtVersion(_) => Some("version = :read"),
            Condition::AbsentOrOlderThan(_) => {
                Some("attribute_not_exists(pk) OR version < :version")
            }
            Condition::Always => None,
        }
    }

    /// DynamoDB rejects values an expression does not use, so only the ones it does.
    fn values(self) -> Option<Item> {
        let (name, version) = match self {
            Condition::Absent | Condition::Always => return None,
            Condition::AtVersion(version) => (":read", version),
            Condition::AbsentOrOlderThan(version) => (":version", version),
        };
        Some(HashMap::from([(
            name.to_owned(),
            AttributeValue::N(version.to_string()),
        )]))
    }
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Strongly consistent: for reads a conditional write or a decision follows.
    Latest,
    /// Eventually consistent, at half the cost: for reads that only show what is there.
    Eventual,
}

impl Read {
    fn is_consistent(self) -> bool {
        self == Read::Latest
    }
}

/// One capability's table and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the table answers; what the health route reports.
    pub async fn is_reachable(&self) -> bool {
        self.probe().await.is_ok()
    }

    /// Opens the DynamoDB connection (DNS, TCP, TLS) during init, when no caller waits on
    /// it, instead of during the first request, with the table's probe read.
    pub async fn warm(&self) {
        let started = std::time::Instant::now();
        match self.probe().await {
            Ok(()) => tracing::info!(
                table = %self.name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "dynamodb connection warmed"
            ),
            Err(error) => {
                tracing::warn!(table = %self.name, error = %error, "could not warm the dynamodb connection")
            }
        }
    }

    /// Reads an item no capability ever writes: proof that the table answers through the
    /// data plane (the connection, the credentials, the role's GetItem) for half a read
    /// unit. DescribeTable would prove less and meets the account's control-plane limit
    /// of 2,500 requests per second when a scale-out starts hundreds of environments.
    pub async fn probe(&self) -> Result<(), TableError> {
        self.client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(PROBE_KEY.to_owned(), PROBE_KEY)))
            .send()
            .await
            .map(|_| ())
            .map_err(dynamo_error)
    }

    /// The item at `key`, decoded, if there is one.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: Item,
        read: Read,
    ) -> Result<Option<T>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(read.is_consistent())
            .send()
            .await
            .map_err(dynamo_error)?;
        output.item.map(decode).transpose()
    }

    /// The items at `keys` that exist, in no particular order. BatchGetItem takes at most
    /// 100 keys and no key twice, and leaves keys unprocessed when throttled: this asks
    /// in batches, once per key, and again for what was left.
    pub async fn batch_get(&self, keys: Vec<Item>, read: Read) -> Result<Vec<Item>, TableError> {
        let mut unique: Vec<Item> = Vec::new();
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        let mut items = Vec::new();
        for chunk in unique.chunks(MAX_KEYS_PER_BATCH) {
            items.extend(self.batch_get_chunk(chunk.to_vec(), read).await?);
        }
        Ok(items)
    }

    async fn batch_get_chunk(&self, keys: Vec<Item>, read: Read) -> Result<Vec<Item>, TableError> {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(read.is_consistent())
            .build()
            .map_err(dynamo_error)?;
        let mut items = Vec::new();
        for attempt in 0..=UNPROCESSED_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let mut output = self
                .client
                .batch_get_item()
                .request_items(&self.name, pending)
                .send()
                .await
                .map_err(dynamo_error)?;
            if let Some(mut responses) = output.responses.take() {
                items.extend(responses.remove(&self.name).unwrap_or_default());
            }
            match output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.name))
            {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => return Ok(items),
            }
        }
        Err(TableError::Dynamo(format!(
            "keys still unprocessed after {UNPROCESSED_RETRIES} retries"
        )))
    }

    /// One page of a query, decoded, and the key to resume after when more items follow.
    /// `query` says what to ask (index, key condition, direction); the page says how much
    /// and from where; `cursor_attributes` are the keys a cursor of this query holds (the
    /// table's and the index's), as its store declares them for
    /// [`crate::http::page_request`].
    ///
    /// DynamoDB answers a `LastEvaluatedKey` whenever it reaches `Limit`, even when nothing
    /// is left, so this asks for one item more than the page holds and answers a key only
    /// when that item came back: a last page never carries a cursor to an empty one.
    pub async fn query_page<T: DeserializeOwned>(
        &self,
        page: PageRequest,
        cursor_attributes: &[&str],
        query: impl FnOnce(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<(Vec<T>, Option<Key>), TableError> {
        let query = query(self.client.query().table_name(&self.name));
        let (items, next) = fill_page(page, cursor_attributes, |limit, after| {
            let request = query.clone().limit(limit).set_exclusive_start_key(after);
            async move {
                let output = request.send().await.map_err(dynamo_error)?;
                Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
            }
        })
        .await?;
        let items = items.into_iter().map(decode).collect::<Result<_, _>>()?;
        Ok((items, next))
    }

    /// The transaction entry that writes `item` if `condition` holds.
    pub fn put<T: Serialize>(
        &self,
        item: &T,
        condition: Condition,
    ) -> Result<TransactWriteItem, TableError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .set_condition_expression(condition.expression().map(str::to_owned))
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The transaction entry that deletes the item at `key` if `condition` holds.
    pub fn delete(&self, key: Item, condition: Condition) -> Result<TransactWriteItem, TableError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .set_condition_expression(condition.expression().map(str::to_owned))
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes `item` at once, on its own, if `condition` holds; else
    /// [`TableError::Conflict`]. For a change that raises no event.
    pub async fn put_now<T: Serialize>(
        &self,
        item: &T,
        condition: Condition,
    ) -> Result<(), TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .set_condition_expression(condition.expression().map(str::to_owned))
            .set_expression_attribute_values(condition.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Err(TableError::Conflict),
            Err(error) => Err(dynamo_error(error)),
        }
    }

    /// A transaction on this table.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(&self.name)
    }

    /// Commits `change` and records `event` in the outbox, all or nothing: the event is
    /// published if and only if the change is made.
    pub async fn commit_with_event<T: DomainEvent>(
        &self,
        change: TransactWriteItem,
        event: &Envelope<T>,
    ) -> Result<(), TableError> {
        let mut transaction = self.transaction();
        transaction.write(change);
        transaction.publish(event)?;
        Ok(transaction.commit(&self.client).await?)
    }
}

/// The page `page` asks for, read through `fetch` (one Query: its `Limit` and
/// `ExclusiveStartKey`, answering the items and the `LastEvaluatedKey`), and the key to
/// resume after its last item if and only if more items follow.
///
/// It asks for one item more than the page holds. A Query can stop short of its `Limit`
/// (at 1 MB read) with a `LastEvaluatedKey`: then it asks again from there for what is
/// missing, so the extra item alone says whether more follow.
async fn fill_page<F>(
    page: PageRequest,
    cursor_attributes: &[&str],
    mut fetch: impl FnMut(i32, Option<Key>) -> F,
) -> Result<(Vec<Item>, Option<Key>), TableError>
where
    F: Future<Output = Result<(Vec<Item>, Option<Key>), TableError>>,
{
    let limit = usize::try_from(page.limit).unwrap_or(0).max(1);
    let mut items: Vec<Item> = Vec::new();
    let mut after = page.after;
    loop {
        let wanted = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
        let (found, last_key) = fetch(wanted, after).await?;
        items.extend(found);
        match last_key {
            Some(key) if items.len() <= limit => after = Some(key),
            _ => break,
        }
    }
    if items.len() <= limit {
        return Ok((items, None));
    }
    items.truncate(limit);
    let next = resume_key(&items[limit - 1], cursor_attributes)?;
    Ok((items, Some(next)))
}

/// The key a query resumes after `item` from: the attributes a cursor of the query holds,
/// as DynamoDB's own `LastEvaluatedKey` would hold them. Only string and number keys exist
/// (and only those make a cursor); an item without one is [`TableError::Corrupt`].
fn resume_key(item: &Item, cursor_attributes: &[&str]) -> Result<Key, TableError> {
    cursor_attributes
        .iter()
        .map(|&name| match item.get(name) {
            Some(value @ (AttributeValue::S(_) | AttributeValue::N(_))) => {
                Ok((name.to_owned(), value.clone()))
            }
            _ => Err(TableError::Corrupt(format!(
                "a listed item has no string or number key `{name}` to resume after"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: &[&str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    /// The `n`th item of a listing by `gsi1`, with an attribute that is not a key.
    fn listed(n: usize) -> Item {
        let s = |value: String| AttributeValue::S(value);
        HashMap::from([
            ("pk".to_owned(), s(format!("ORDER#{n}"))),
            ("sk".to_owned(), s("ORDER".into())),
            ("gsi1pk".to_owned(), s("USER#u".into())),
            ("gsi1sk".to_owned(), s(format!("{n:04}"))),
            ("total".to_owned(), AttributeValue::N(n.to_string())),
        ])
    }

    fn number(item: &Item) -> String {
        match &item["pk"] {
            AttributeValue::S(pk) => pk.trim_start_matches("ORDER#").to_owned(),
            other => panic!("{other:?}"),
        }
    }

    /// A Query over `items` (in the query's order) that answers as DynamoDB does: a
    /// `LastEvaluatedKey` whenever it stops at its `Limit`, whether or not anything is
    /// left, and whenever it stops at its size cap (1 MB there, `per_response` items here).
    struct DynamoQuery {
        items: Vec<Item>,
        per_response: usize,
        limits_asked: Vec<i32>,
    }

    impl DynamoQuery {
        fn new(count: usize) -> Self {
            Self {
                items: (1..=count).map(listed).collect(),
                per_response: usize::MAX,
                limits_asked: Vec::new(),
            }
        }

        fn answer(
            &mut self,
            limit: i32,
            after: Option<Key>,
        ) -> Result<(Vec<Item>, Option<Key>), TableError> {
            assert!(limit >= 1, "DynamoDB rejects a Limit of {limit}");
            self.limits_asked.push(limit);
            let start = match after {
                None => 0,
                Some(after) => {
                    1 + self
                        .items
                        .iter()
                        .position(|item| {
                            after
                                .iter()
                                .all(|(name, value)| item.get(name) == Some(value))
                        })
                        .expect("ExclusiveStartKey is the key of a listed item")
                }
            };
            let most = usize::try_from(limit).unwrap().min(self.per_response);
            let found: Vec<Item> = self.items[start..].iter().take(most).cloned().collect();
            let last_key =
                (found.len() == most).then(|| resume_key(found.last().unwrap(), CURSOR).unwrap());
            Ok((found, last_key))
        }

        /// Every page of the listing, `limit` at a time, as (the items' numbers, whether it
        /// carries a key to go on from), following each key as a caller follows a cursor.
        async fn pages(&mut self, limit: i32) -> Vec<(Vec<String>, bool)> {
            let mut pages = Vec::new();
            let mut after = None;
            loop {
                let page = PageRequest { limit, after };
                let (items, next) = fill_page(page, CURSOR, |limit, after| {
                    std::future::ready(self.answer(limit, after))
                })
                .await
                .unwrap();
                pages.push((items.iter().map(number).collect(), next.is_some()));
                if let Some(next) = &next {
                    assert!(
                        crate::pagination::encode_cursor(
                            &crate::pagination::CursorKey::new(b"k"),
                            next
                        )
                        .is_some()
                    );
                }
                match next {
                    Some(next) => after = Some(next),
                    None => return pages,
                }
            }
        }
    }

    fn page(numbers: &[&str], more: bool) -> (Vec<String>, bool) {
        (numbers.iter().map(|n| (*n).to_owned()).collect(), more)
    }

    #[tokio::test]
    async fn a_page_of_exactly_the_limit_carries_no_key_though_dynamodb_answers_one() {
        let mut query = DynamoQuery::new(3);
        let (_, dynamodb_says) = query.answer(3, None).unwrap();
        assert!(
            dynamodb_says.is_some(),
            "the defect: a LastEvaluatedKey with nothing left"
        );

        let mut query = DynamoQuery::new(3);
        assert_eq!(query.pages(3).await, [page(&["1", "2", "3"], false)]);
        assert_eq!(query.limits_asked, [4], "one more than the page holds");
    }

    #[tokio::test]
    async fn one_item_past_the_limit_makes_a_key_to_a_page_of_that_item_alone() {
        let mut query = DynamoQuery::new(4);
        let (items, next) = fill_page(
            PageRequest {
                limit: 3,
                after: None,
            },
            CURSOR,
            |limit, after| std::future::ready(query.answer(limit, after)),
        )
        .await
        .unwrap();
        assert_eq!(items.len(), 3);
        let expected: Key = CURSOR
            .iter()
            .map(|name| ((*name).to_owned(), items[2][*name].clone()))
            .collect();
        assert_eq!(
            next,
            Some(expected),
            "the key of the limit-th item, not of the extra one"
        );

        assert_eq!(
            DynamoQuery::new(4).pages(3).await,
            [page(&["1", "2", "3"], true), page(&["4"], false)]
        );
    }

    #[tokio::test]
    async fn five_items_two_at_a_time_are_pages_of_two_two_and_one() {
        assert_eq!(
            DynamoQuery::new(5).pages(2).await,
            [
                page(&["1", "2"], true),
                page(&["3", "4"], true),
                page(&["5"], false)
            ]
        );
        assert_eq!(DynamoQuery::new(0).pages(2).await, [page(&[], false)]);
    }

    #[tokio::test]
    async fn a_query_cut_short_by_size_is_asked_again_for_the_rest_of_the_page() {
        let mut query = DynamoQuery::new(7);
        query.per_response = 2;
        assert_eq!(
            query.pages(5).await,
            [
                page(&["1", "2", "3", "4", "5"], true),
                page(&["6", "7"], false)
            ]
        );
        assert_eq!(query.limits_asked, [6, 4, 2, 6, 4]);

        let mut query = DynamoQuery::new(4);
        query.per_response = 2;
        assert_eq!(query.pages(4).await, [page(&["1", "2", "3", "4"], false)]);
    }

    #[test]
    fn a_resume_key_holds_the_cursor_attributes_and_nothing_else() {
        let item = listed(7);
        let key = resume_key(&item, CURSOR).unwrap();
        let mut names: Vec<&str> = key.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["gsi1pk", "gsi1sk", "pk", "sk"]);
        assert_eq!(key["gsi1sk"], item["gsi1sk"]);

        assert!(matches!(
            resume_key(&item, &["pk", "sk", "gsi2pk", "gsi2sk"]),
            Err(TableError::Corrupt(_))
        ));
        let mut odd = item;
        odd.insert("sk".to_owned(), AttributeValue::Bool(true));
        assert!(matches!(
            resume_key(&odd, CURSOR),
            Err(TableError::Corrupt(_))
        ));
    }

    #[test]
    fn a_write_back_of_what_was_never_stored_requires_that_it_still_is_not() {
        assert_eq!(Condition::unchanged_since(0), Condition::Absent);
        assert_eq!(Condition::unchanged_since(3), Condition::AtVersion(3));
    }

    #[test]
    fn a_condition_names_exactly_the_values_its_expression_uses() {
        for condition in [
            Condition::Absent,
            Condition::AtVersion(2),
            Condition::AbsentOrOlderThan(2),
            Condition::Always,
        ] {
            let expression = condition.expression().unwrap_or_default();
            let names: Vec<String> = condition.values().unwrap_or_default().into_keys().collect();
            assert_eq!(
                names.len(),
                expression.matches(':').count(),
                "{condition:?}"
            );
            assert!(names.iter().all(|name| expression.contains(name.as_str())));
        }
    }
}
