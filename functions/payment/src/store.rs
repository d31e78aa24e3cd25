//! The payments table. One item per order (`PAYMENT#<orderId>` / `PAYMENT`); the outbox
//! and the consumer's processed-event markers share the table, because a payment, its
//! event and its marker commit in one transaction. Every read is by key; the table has
//! no index.
//!
//! A payment is created only if the order has none (whoever decides first keeps it: a
//! charge's outcome, or a cancellation's tombstone) and changed only at the version it
//! was read at, so a charge and a cancellation racing on one order never both win: the
//! loser's handler runs again on what the winner wrote.

use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use shop_platform::store::{Condition, Item, Read, Table, TableError, key};
use shop_platform::transaction::Transaction;

use crate::domain::Payment;

const PAYMENT_SORT_KEY: &str = "PAYMENT";

/// A payment as stored: the payment plus its keys. A tombstone's `expiresAt` is the
/// table's TTL attribute.
#[derive(Serialize, Deserialize)]
struct PaymentItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    payment: Payment,
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

    /// Adds the order's first payment record to `transaction`, on condition that the order
    /// has none yet.
    pub fn stage_first(
        &self,
        transaction: &mut Transaction,
        payment: &Payment,
    ) -> Result<(), TableError> {
        transaction.write(self.put(payment, Condition::Absent)?);
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
        transaction.write(self.put(payment, Condition::AtVersion(read_version))?);
        Ok(())
    }

    fn put(
        &self,
        payment: &Payment,
        condition: Condition,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, TableError> {
        let item = PaymentItem {
            pk: payment_partition(&payment.order_id),
            sk: PAYMENT_SORT_KEY.to_owned(),
            payment: payment.clone(),
        };
        self.table.put(&item, condition)
    }
}
