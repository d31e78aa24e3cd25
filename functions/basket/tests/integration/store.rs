//! The basket table's conditional writes against moto, one at a time: what keeps
//! concurrent writers from losing each other's changes in DynamoDB.

use crate::support::*;
use basket::domain::{
    AddressInput, Basket, Catalog, Checkout, CheckoutInput, IdempotencyKey, Listing,
    ProjectedProduct,
};
use basket::store::StoreError;
use chrono::{DateTime, Utc};
use shop_events::basket::CheckoutRequested;
use shop_events::{Envelope, Money};
use shop_platform::store::Read;
use shop_platform::transaction::{CommitError, Transaction};

fn on_sale(product: &str, amount: i64, version: u64) -> ProjectedProduct {
    ProjectedProduct {
        product_id: product.into(),
        version,
        listing: Listing::OnSale {
            name: "Thing".into(),
            unit_price: Money::usd(amount),
        },
    }
}

async fn project(shop: &Shop, product: &ProjectedProduct) -> Result<(), CommitError> {
    let mut transaction = Transaction::new(&shop.table.name);
    shop.store()
        .stage_projection(&mut transaction, product)
        .unwrap();
    transaction.commit(&shop.table.dynamodb).await
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_891_276, 0).unwrap()
}

fn books() -> Catalog {
    [on_sale(BOOK, 1000, 1)].into_iter().collect()
}

/// The shopper's basket with one book, stored at version 1.
async fn stored_basket(shop: &Shop) -> Basket {
    let basket = Basket::empty(SHOPPER, now())
        .set_line(BOOK, 1, &books(), now())
        .unwrap();
    shop.store().save_basket(&basket, 0).await.unwrap();
    basket
}

/// `basket` checked out into order `order_id`: the basket as that leaves it, the
/// checkout and its event.
fn checkout(basket: &Basket, order_id: &str) -> (Basket, Checkout, Envelope<CheckoutRequested>) {
    let input = CheckoutInput {
        shipping_address: AddressInput {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: None,
            city: "London".into(),
            postal_code: "N1".into(),
            country: "GB".into(),
        },
        payment_token: "tok".into(),
    };
    let (frozen, checkout, requested) = basket
        .check_out(order_id.into(), &books(), input, now())
        .unwrap();
    (frozen, checkout, Envelope::new(requested, "corr-store"))
}

#[tokio::test]
async fn a_basket_write_from_a_stale_read_is_refused() {
    let shop = Shop::new().await;
    let store = shop.store();
    let catalog = [on_sale(BOOK, 100, 1)].into_iter().collect();
    let now = DateTime::from_timestamp(1_795_891_276, 0).unwrap();
    let first = Basket::empty(SHOPPER, now)
        .set_line(BOOK, 1, &catalog, now)
        .unwrap();
    store.save_basket(&first, 0).await.unwrap();
    assert!(
        matches!(
            store.save_basket(&first, 0).await,
            Err(StoreError::Conflict)
        ),
        "a second creation"
    );
    let second = first.set_line(BOOK, 2, &catalog, now).unwrap();
    store.save_basket(&second, 1).await.unwrap();
    let lost = first.set_line(BOOK, 9, &catalog, now).unwrap();
    assert!(
        matches!(store.save_basket(&lost, 1).await, Err(StoreError::Conflict)),
        "written from version 1 after version 2"
    );
    assert_eq!(store.basket(SHOPPER).await.unwrap(), Some(second));
}

#[tokio::test]
async fn a_second_checkout_with_the_same_key_is_refused_and_writes_nothing() {
    let shop = Shop::new().await;
    let key = IdempotencyKey::parse("key-store-01").unwrap();
    let basket = stored_basket(&shop).await;
    let (first_basket, first, first_event) = checkout(&basket, "01JDKRB5Q2W7E9R4T6Y8V1K3M5");
    shop.store()
        .record_checkout(&first, &key, &first_event, &first_basket, basket.version)
        .await
        .unwrap();
    let (second_basket, second, second_event) = checkout(&basket, "01JDKRB5Q2W7E9R4T6Y8V1K3M6");
    assert!(matches!(
        shop.store()
            .record_checkout(&second, &key, &second_event, &second_basket, basket.version)
            .await,
        Err(StoreError::AlreadyCheckedOut)
    ));
    assert_eq!(
        shop.table.item_count().await,
        4,
        "the basket, one checkout, its order, its event"
    );
    assert_eq!(
        shop.store().checkout_by_key(SHOPPER, &key).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        shop.store()
            .checkout_by_order(&first.order_id)
            .await
            .unwrap(),
        Some(first)
    );
}

#[tokio::test]
async fn a_checkout_from_a_stale_read_of_the_basket_is_refused_and_writes_nothing() {
    let shop = Shop::new().await;
    let store = shop.store();
    let key = IdempotencyKey::parse("key-store-02").unwrap();
    let order_id = "01JDKRB5Q2W7E9R4T6Y8V1K3M7";
    let read = stored_basket(&shop).await;
    let (frozen, stale, event) = checkout(&read, order_id);
    // Another request of the user commits first.
    let changed = read.set_line(BOOK, 4, &books(), now()).unwrap();
    store.save_basket(&changed, read.version).await.unwrap();

    let before = shop.table.item_count().await;
    assert!(matches!(
        store
            .record_checkout(&stale, &key, &event, &frozen, read.version)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(shop.table.item_count().await, before, "nothing written");
    assert_eq!(store.checkout_by_key(SHOPPER, &key).await.unwrap(), None);
    assert_eq!(
        store.basket(SHOPPER).await.unwrap().as_ref(),
        Some(&changed)
    );

    // Made again from what is stored now, it goes through, and the basket says so.
    let (frozen, checkout, event) = checkout(&changed, order_id);
    assert_eq!(checkout.lines[0].quantity, 4);
    store
        .record_checkout(&checkout, &key, &event, &frozen, changed.version)
        .await
        .unwrap();
    let stored = store.basket(SHOPPER).await.unwrap().unwrap();
    assert_eq!(stored, frozen);
    assert_eq!(stored.version, changed.version + 1);
    assert_eq!(stored.lines[0].pending_order_id.as_deref(), Some(order_id));
}

#[tokio::test]
async fn the_projection_write_itself_never_goes_backwards() {
    // The consumer decides from what it reads; this condition covers a newer version
    // committed between that read and the write.
    let shop = Shop::new().await;
    let product = new_product();
    project(&shop, &on_sale(&product, 300, 3)).await.unwrap();
    for stale in [on_sale(&product, 100, 2), on_sale(&product, 100, 3)] {
        assert!(matches!(
            project(&shop, &stale).await,
            Err(CommitError::ConditionFailed { .. })
        ));
    }
    project(&shop, &on_sale(&product, 400, 4)).await.unwrap();
    assert_eq!(
        shop.store().product(&product).await.unwrap(),
        Some(on_sale(&product, 400, 4))
    );
}

#[tokio::test]
async fn a_basket_full_of_products_is_priced_from_one_read_of_the_projection() {
    let shop = Shop::new().await;
    let products: Vec<String> = (0..50).map(|_| new_product()).collect();
    for product in &products {
        project(&shop, &on_sale(product, 100, 1)).await.unwrap();
    }
    let unknown = new_product();
    let wanted = products
        .iter()
        .map(String::as_str)
        .chain([unknown.as_str(), products[0].as_str()]);
    let catalog = shop.store().catalog(wanted, Read::Latest).await.unwrap();
    for product in &products {
        assert!(catalog.for_sale(product).is_some(), "{product}");
    }
    assert!(catalog.for_sale(&unknown).is_none());
    assert!(
        shop.store()
            .catalog(std::iter::empty(), Read::Latest)
            .await
            .unwrap()
            .for_sale(BOOK)
            .is_none()
    );
}

#[tokio::test]
async fn a_stored_product_on_sale_without_a_price_is_reported_not_guessed() {
    use aws_sdk_dynamodb::types::AttributeValue::{Bool, N, S};
    let shop = Shop::new().await;
    shop.table
        .dynamodb
        .put_item()
        .table_name(&shop.table.name)
        .item("pk", S(format!("PRODUCT#{BOOK}")))
        .item("sk", S("PROJECTION".into()))
        .item("productId", S(BOOK.into()))
        .item("version", N("1".into()))
        .item("deleted", Bool(false))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        shop.store().product(BOOK).await,
        Err(StoreError::Corrupt(_))
    ));
    let (status, _, _) = shop.call(fixture("api-set-item.json")).await;
    assert_eq!(status, 500);
}
