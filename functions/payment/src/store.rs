//! The payments table. One item per order (`PAYMENT#<orderId>` / `PAYMENT`); the outbox
//! and the consumer's processed-event markers share the table, because a payment, its
//! event and its marker commit in one transaction.
//!
//! A payment whose money is not settled carries the keys of the sparse index `gsi1`
//! (`UNSETTLED` / `<nextCheckAt>#<orderId>`), written and removed in the same put as the
//! change that makes it unsettled or settled: the reconciler's work list is one Query of
//! what is due, and a settled payment costs it nothing. Unsettled payments are the rare
//! ones (a provider that did not answer, a refund owed), so one partition holds them all.
//!
//! A payment is created only if the order has none (whoever decides first keeps it: a
//! charge about to be asked for, or a cancellation's tombstone) and changed only at the
//! version it was read at, so a charge and a cancellation racing on one order never both
//! win: the loser runs again on what the winner wrote.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_events::timestamp;
use shop_platform::store::{Condition, Item, Read, Table, TableError, decode, dynamo_error, key};
use shop_platform::transaction::Transaction;

use crate::domain::Payment;

const PAYMENT_SORT_KEY: &str = "PAYMENT";
const UNSETTLED_INDEX: &str = "gsi1";
const UNSETTLED_PARTITION: &str = "UNSETTLED";

/// A payment as stored: the payment plus its keys, and the index keys while unsettled.
#[derive(Serialize, Deserialize)]
struct PaymentItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    payment: Payment,
}

impl PaymentItem {
    fn new(payment: Payment) -> Self {
        // nextCheckAt is fixed-width RFC 3339 in UTC, so the index sorts by it; the order
        // id breaks ties.
        let due = payment
            .next_check_at
            .as_ref()
            .map(|at| format!("{at}#{}", payment.order_id));
        Self {
            pk: payment_partition(&payment.order_id),
            sk: PAYMENT_SORT_KEY.to_owned(),
            gsi1pk: due.as_ref().map(|_| UNSETTLED_PARTITION.to_owned()),
            gsi1sk: due,
            payment,
        }
    }
}

fn payment_partition(order_id: &str) -> String {
    format!("PAYMENT#{order_id}")
}

fn key_of(order_id: &str) -> Item {
    key(payment_partition(order_id), PAYMENT_SORT_KEY)
}

#[derive(Clone)]
pub struct PaymentStore {
    table: Table,
}

impl PaymentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The order's payment as last written. Strongly consistent: whether to charge is
    /// decided on it.
    pub async fn get(&self, order_id: &str) -> Result<Option<Payment>, TableError> {
        let stored: Option<PaymentItem> = self.table.get(key_of(order_id), Read::Latest).await?;
        Ok(stored.map(|stored| stored.payment))
    }

    /// Writes the order's first payment record at once, on its own, if the order has none
    /// yet; else [`TableError::Conflict`]. For the record that must exist before a charge
    /// is asked for.
    pub async fn create_now(&self, payment: &Payment) -> Result<(), TableError> {
        self.table
            .put_now(&PaymentItem::new(payment.clone()), Condition::Absent)
            .await
    }

    /// Writes a change of the payment at once, on its own, if the stored payment is still
    /// at `read_version`; else [`TableError::Conflict`].
    pub async fn change_now(&self, payment: &Payment, read_version: u64) -> Result<(), TableError> {
        self.table
            .put_now(
                &PaymentItem::new(payment.clone()),
                Condition::AtVersion(read_version),
            )
            .await
    }

    /// Adds the order's first payment record to `transaction`, on condition that the order
    /// has none yet.
    pub fn stage_first(
        &self,
        transaction: &mut Transaction,
        payment: &Payment,
    ) -> Result<(), TableError> {
        transaction.write(
            self.table
                .put(&PaymentItem::new(payment.clone()), Condition::Absent)?,
        );
        Ok(())
    }

    /// Adds a change of the payment to `transaction`, on condition that the stored
    /// payment is still at `read_version`.
    pub fn stage_next(
        &self,
        transaction: &mut Transaction,
        payment: &Payment,
        read_version: u64,
    ) -> Result<(), TableError> {
        transaction.write(self.table.put(
            &PaymentItem::new(payment.clone()),
            Condition::AtVersion(read_version),
        )?);
        Ok(())
    }

    /// The ids of up to `limit` unsettled payments due for a look at `now`, the longest
    /// due first. The index is eventually consistent: the caller reads each payment again
    /// before acting on it.
    pub async fn due(&self, now: DateTime<Utc>, limit: i32) -> Result<Vec<String>, TableError> {
        // '$' sorts right after '#', so every `<instant>#<orderId>` up to `now` is below it.
        let bound = format!("{}$", timestamp(now));
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(UNSETTLED_INDEX)
            .key_condition_expression("gsi1pk = :unsettled AND gsi1sk < :bound")
            .expression_attribute_values(
                ":unsettled",
                AttributeValue::S(UNSETTLED_PARTITION.to_owned()),
            )
            .expression_attribute_values(":bound", AttributeValue::S(bound))
            .limit(limit)
            .send()
            .await
            .map_err(dynamo_error)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let key: DueKey = decode(item)?;
                key.pk
                    .strip_prefix("PAYMENT#")
                    .map(str::to_owned)
                    .ok_or_else(|| TableError::Corrupt(format!("{} is no payment", key.pk)))
            })
            .collect()
    }
}

/// What the unsettled index holds of a payment (it projects the keys only).
#[derive(Deserialize)]
struct DueKey {
    pk: String,
}
