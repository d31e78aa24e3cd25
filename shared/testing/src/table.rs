//! A capability's table in the test binary's moto, and ways to look at what was written.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use crate::{create_table, sdk_config, unique};

/// One item as DynamoDB returns it.
pub type Item = HashMap<String, AttributeValue>;

/// A table of the capability layout (see [`create_table`]) with the NEW_IMAGE stream its
/// relay reads, named for one test so tests can share the emulator.
pub struct Table {
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    pub async fn new(prefix: &str, indexes: &[&str]) -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let name = unique(prefix);
        create_table(&dynamodb, &name, indexes, true).await;
        Self {
            config,
            dynamodb,
            name,
        }
    }

    /// How many items the table holds: what "a rejected request writes nothing" compares.
    /// Consistent, so a write that just returned is counted.
    pub async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(&self.name)
            .select(Select::Count)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .count
    }

    /// Every item whose `pk` starts with `prefix`, read consistently, all pages.
    pub async fn items(&self, prefix: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.name)
                .filter_expression("begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return items,
            }
        }
    }
}
