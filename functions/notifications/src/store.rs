//! The connections table. A connection is kept under three keys, each the one a reader
//! has in hand:
//!
//! - `CONNECTION#<connectionId>` / `CONNECTION`: `$disconnect` and a push that met 410
//!   Gone know only the connection id;
//! - `USER#<userId>` / `CONNECTION#<connectionId>`: a push knows only the order's owner;
//! - `WATCHERS` / `CONNECTION#<connectionId>`: the admins' connections that follow every
//!   order (the operations view), one Query for every push.
//!
//! Each item carries the whole connection and `expiresAt`, the table's TTL attribute: a
//! connection whose `$disconnect` never came (API Gateway sends it best effort) is
//! forgotten after API Gateway's two-hour limit, if no push has pruned it before.
//!
//! Nothing here is read back to decide a write, so nothing needs a version: opening
//! writes the keys, removing deletes them, and two removals of one connection (a
//! `$disconnect` racing a prune) both succeed.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shop_platform::pagination::PageRequest;
use shop_platform::store::{Condition, Item, Read, Table, TableError, key};
use shop_platform::transaction::Transaction;

use crate::domain::Connection;

const CONNECTION_SORT_KEY: &str = "CONNECTION";
const WATCHERS_PARTITION: &str = "WATCHERS";
/// More connections than one user, or all the operators, plausibly hold at once; what is
/// past it is still there, read page after page.
const PAGE: i32 = 100;

#[derive(Serialize, Deserialize)]
struct ConnectionItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    connection: Connection,
}

fn connection_key(connection_id: &str) -> Item {
    key(format!("CONNECTION#{connection_id}"), CONNECTION_SORT_KEY)
}

fn user_partition(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn member_sort_key(connection_id: &str) -> String {
    format!("CONNECTION#{connection_id}")
}

fn user_key(connection: &Connection) -> Item {
    key(
        user_partition(&connection.user_id),
        &member_sort_key(&connection.connection_id),
    )
}

fn watcher_key(connection_id: &str) -> Item {
    key(
        WATCHERS_PARTITION.to_owned(),
        &member_sort_key(connection_id),
    )
}

fn item_at(key: Item, connection: &Connection) -> Result<ConnectionItem, TableError> {
    let text = |name: &str| match key.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(TableError::Corrupt(format!("key without {name}"))),
    };
    Ok(ConnectionItem {
        pk: text("pk")?,
        sk: text("sk")?,
        connection: connection.clone(),
    })
}

#[derive(Clone)]
pub struct ConnectionStore {
    table: Table,
}

impl ConnectionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Records a connection that `$connect` accepted, under its id and its user, together.
    pub async fn open(&self, connection: &Connection) -> Result<(), TableError> {
        let mut transaction = self.table.transaction();
        for key in [
            connection_key(&connection.connection_id),
            user_key(connection),
        ] {
            transaction.write(
                self.table
                    .put(&item_at(key, connection)?, Condition::Always)?,
            );
        }
        Ok(transaction.commit(self.table.client()).await?)
    }

    /// The connection with this id, if it is open.
    pub async fn find(&self, connection_id: &str) -> Result<Option<Connection>, TableError> {
        let stored: Option<ConnectionItem> = self
            .table
            .get(connection_key(connection_id), Read::Latest)
            .await?;
        Ok(stored.map(|stored| stored.connection))
    }

    /// Adds the connection to those that follow every order.
    pub async fn watch_all(&self, connection: &Connection) -> Result<(), TableError> {
        let item = item_at(watcher_key(&connection.connection_id), connection)?;
        self.table.put_now(&item, Condition::Always).await
    }

    /// The open connections of `user_id`.
    pub async fn connections_of(&self, user_id: &str) -> Result<Vec<Connection>, TableError> {
        self.members(user_partition(user_id)).await
    }

    /// The connections that follow every order.
    pub async fn watchers(&self) -> Result<Vec<Connection>, TableError> {
        self.members(WATCHERS_PARTITION.to_owned()).await
    }

    /// Removes every key of `connection` at once (`$disconnect`).
    pub async fn close(&self, connection: &Connection) -> Result<(), TableError> {
        let mut transaction = self.table.transaction();
        self.stage_close(&mut transaction, connection)?;
        Ok(transaction.commit(self.table.client()).await?)
    }

    /// Adds the removal of every key of `connection` to `transaction` (a push that met
    /// 410 Gone, committed with the event's processed marker).
    pub fn stage_close(
        &self,
        transaction: &mut Transaction,
        connection: &Connection,
    ) -> Result<(), TableError> {
        for key in [
            connection_key(&connection.connection_id),
            user_key(connection),
            watcher_key(&connection.connection_id),
        ] {
            transaction.write(self.table.delete(key, Condition::Always)?);
        }
        Ok(())
    }

    async fn members(&self, partition: String) -> Result<Vec<Connection>, TableError> {
        let mut connections = Vec::new();
        let mut after = None;
        loop {
            let page = PageRequest { limit: PAGE, after };
            let (items, next) = self
                .table
                .query_page::<ConnectionItem>(page, &["pk", "sk"], |query| {
                    query
                        .key_condition_expression("pk = :partition")
                        .expression_attribute_values(
                            ":partition",
                            AttributeValue::S(partition.clone()),
                        )
                })
                .await?;
            connections.extend(items.into_iter().map(|item| item.connection));
            match next {
                Some(next) => after = Some(next),
                None => return Ok(connections),
            }
        }
    }
}
