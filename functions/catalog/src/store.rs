//! The products table. One item per product (`PRODUCT#<id>` / `PRODUCT`) with two sparse
//! indexes: `gsi1` lists every product by name, `gsi2` lists one category by name. The
//! outbox and nothing else shares the table. Every write is conditional on the version
//! read, so concurrent admins never silently overwrite each other.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductUpdated};
use shop_events::{DomainEvent, Envelope};
use shop_platform::pagination::{Key, PageRequest};
use shop_platform::transaction::{CommitError, Transaction};

use crate::domain::Product;

const ALL_PRODUCTS_INDEX: &str = "gsi1";
const BY_CATEGORY_INDEX: &str = "gsi2";
/// The single partition of the all-products index. A catalog is small and read-mostly;
/// DESIGN's capacity notes cover the day it is not.
const ALL_PRODUCTS_PARTITION: &str = "PRODUCT";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such product")]
    NotFound,
    #[error("the product changed since it was read")]
    Conflict,
    #[error("dynamodb: {0}")]
    Dynamo(String),
    #[error("stored item is not a product: {0}")]
    Corrupt(String),
}

impl From<CommitError> for StoreError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::ConditionFailed { .. } | CommitError::TransactionConflict => {
                StoreError::Conflict
            }
            other => StoreError::Dynamo(other.to_string()),
        }
    }
}

fn dynamo_error<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Dynamo(DisplayErrorContext(error).to_string())
}

/// A product as stored: the product plus its keys.
#[derive(Serialize, Deserialize)]
struct ProductItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
    #[serde(flatten)]
    product: Product,
}

fn product_key(id: &str) -> String {
    format!("PRODUCT#{id}")
}

const PRODUCT_SORT_KEY: &str = "PRODUCT";

fn category_partition(category: &str) -> String {
    format!("CATEGORY#{category}")
}

impl ProductItem {
    fn new(product: Product) -> Self {
        // Sorted by name, case-insensitively; the id breaks ties.
        let by_name = format!("{}#{}", product.name.to_lowercase(), product.id);
        Self {
            pk: product_key(&product.id),
            sk: PRODUCT_SORT_KEY.to_owned(),
            gsi1pk: ALL_PRODUCTS_PARTITION.to_owned(),
            gsi1sk: by_name.clone(),
            gsi2pk: category_partition(&product.category),
            gsi2sk: by_name,
            product,
        }
    }
}

fn key_of(id: &str) -> [(String, AttributeValue); 2] {
    [
        ("pk".to_owned(), AttributeValue::S(product_key(id))),
        (
            "sk".to_owned(),
            AttributeValue::S(PRODUCT_SORT_KEY.to_owned()),
        ),
    ]
}

#[derive(Clone)]
pub struct ProductStore {
    client: Client,
    table: String,
}

impl ProductStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id).into_iter().collect()))
            .send()
            .await
            .map_err(dynamo_error)?;
        output.item.map(from_item).transpose()
    }

    pub async fn create(
        &self,
        product: Product,
        event: &Envelope<ProductCreated>,
    ) -> Result<(), StoreError> {
        self.commit(self.put(product, "attribute_not_exists(pk)", None)?, event)
            .await
    }

    pub async fn replace(
        &self,
        product: Product,
        read_version: u64,
        event: &Envelope<ProductUpdated>,
    ) -> Result<(), StoreError> {
        let put = self.put(product, "version = :read", Some(read_version))?;
        self.commit(put, event).await
    }

    pub async fn delete(
        &self,
        id: &str,
        read_version: u64,
        event: &Envelope<ProductDeleted>,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(id).into_iter().collect()))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
            .build()
            .map_err(dynamo_error)?;
        self.commit(TransactWriteItem::builder().delete(delete).build(), event)
            .await
    }

    /// One page of products by name, all or one category's.
    pub async fn list(
        &self,
        category: Option<&str>,
        page: PageRequest,
    ) -> Result<(Vec<Product>, Option<Key>), StoreError> {
        let (index, partition_attribute, partition) = match category {
            Some(category) => (BY_CATEGORY_INDEX, "gsi2pk", category_partition(category)),
            None => (
                ALL_PRODUCTS_INDEX,
                "gsi1pk",
                ALL_PRODUCTS_PARTITION.to_owned(),
            ),
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#partition = :partition")
            .expression_attribute_names("#partition", partition_attribute)
            .expression_attribute_values(":partition", AttributeValue::S(partition))
            .limit(page.limit)
            .set_exclusive_start_key(page.after)
            .send()
            .await
            .map_err(dynamo_error)?;
        let products = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((products, output.last_evaluated_key))
    }

    /// The key attributes a cursor of [`Self::list`] holds.
    pub fn cursor_attributes(category: Option<&str>) -> &'static [&'static str] {
        match category {
            Some(_) => &["pk", "sk", "gsi2pk", "gsi2sk"],
            None => &["pk", "sk", "gsi1pk", "gsi1sk"],
        }
    }

    /// The cursor must belong to the listing it is used with: a cursor from another
    /// category would make DynamoDB reject the query.
    pub fn cursor_matches(category: Option<&str>, cursor: &Key) -> bool {
        let (attribute, partition) = match category {
            Some(category) => ("gsi2pk", category_partition(category)),
            None => ("gsi1pk", ALL_PRODUCTS_PARTITION.to_owned()),
        };
        matches!(cursor.get(attribute), Some(AttributeValue::S(value)) if *value == partition)
    }

    /// Whether the table answers; for the health route.
    pub async fn is_reachable(&self) -> bool {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
    }

    fn put(
        &self,
        product: Product,
        condition: &str,
        read_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = serde_dynamo::to_item(ProductItem::new(product))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(read_version.map(|v| {
                [(":read".to_owned(), AttributeValue::N(v.to_string()))]
                    .into_iter()
                    .collect()
            }))
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn commit<T: DomainEvent>(
        &self,
        change: TransactWriteItem,
        event: &Envelope<T>,
    ) -> Result<(), StoreError> {
        let mut transaction = Transaction::new(&self.table);
        transaction.write(change);
        transaction.publish(event)?;
        Ok(transaction.commit(&self.client).await?)
    }
}

fn from_item(
    item: std::collections::HashMap<String, AttributeValue>,
) -> Result<Product, StoreError> {
    serde_dynamo::from_item::<_, ProductItem>(item)
        .map(|stored| stored.product)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
