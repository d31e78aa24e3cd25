//! The products table. One item per product (`PRODUCT#<id>` / `PRODUCT`) with two sparse
//! indexes: `gsi1` lists every product by name, `gsi2` lists one category by name. The
//! outbox and nothing else shares the table. Every write is conditional on the version
//! read, so concurrent admins never silently overwrite each other.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shop_events::Envelope;
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductUpdated};
use shop_platform::pagination::{Key, PageRequest};
use shop_platform::store::{Condition, Item, Read, Table, TableError, key};

use crate::domain::Product;

const ALL_PRODUCTS_INDEX: &str = "gsi1";
const BY_CATEGORY_INDEX: &str = "gsi2";
/// The single partition of the all-products index. A catalog is small and read-mostly;
/// DESIGN's capacity notes cover the day it is not.
const ALL_PRODUCTS_PARTITION: &str = "PRODUCT";

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

fn key_of(id: &str) -> Item {
    key(product_key(id), PRODUCT_SORT_KEY)
}

#[derive(Clone)]
pub struct ProductStore {
    table: Table,
}

impl ProductStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub async fn get(&self, id: &str) -> Result<Option<Product>, TableError> {
        let stored: Option<ProductItem> = self.table.get(key_of(id), Read::Eventual).await?;
        Ok(stored.map(|stored| stored.product))
    }

    pub async fn create(
        &self,
        product: Product,
        event: &Envelope<ProductCreated>,
    ) -> Result<(), TableError> {
        let put = self
            .table
            .put(&ProductItem::new(product), Condition::Absent)?;
        self.table.commit_with_event(put, event).await
    }

    pub async fn replace(
        &self,
        product: Product,
        read_version: u64,
        event: &Envelope<ProductUpdated>,
    ) -> Result<(), TableError> {
        let put = self.table.put(
            &ProductItem::new(product),
            Condition::AtVersion(read_version),
        )?;
        self.table.commit_with_event(put, event).await
    }

    pub async fn delete(
        &self,
        id: &str,
        read_version: u64,
        event: &Envelope<ProductDeleted>,
    ) -> Result<(), TableError> {
        let delete = self
            .table
            .delete(key_of(id), Condition::AtVersion(read_version))?;
        self.table.commit_with_event(delete, event).await
    }

    /// One page of products by name, all or one category's.
    pub async fn list(
        &self,
        category: Option<&str>,
        page: PageRequest,
    ) -> Result<(Vec<Product>, Option<Key>), TableError> {
        let (index, partition_attribute, partition) = match category {
            Some(category) => (BY_CATEGORY_INDEX, "gsi2pk", category_partition(category)),
            None => (
                ALL_PRODUCTS_INDEX,
                "gsi1pk",
                ALL_PRODUCTS_PARTITION.to_owned(),
            ),
        };
        let (items, last_key) = self
            .table
            .query_page::<ProductItem>(page, Self::cursor_attributes(category), |query| {
                query
                    .index_name(index)
                    .key_condition_expression("#partition = :partition")
                    .expression_attribute_names("#partition", partition_attribute)
                    .expression_attribute_values(":partition", AttributeValue::S(partition))
            })
            .await?;
        let products = items.into_iter().map(|stored| stored.product).collect();
        Ok((products, last_key))
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
}
