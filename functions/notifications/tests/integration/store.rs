//! The connections table against moto: each connection under the keys its readers hold,
//! and gone from all of them at once.

use crate::support::*;

#[tokio::test]
async fn a_connection_is_found_by_its_id_and_by_its_user_until_it_closes() {
    let notifications = Notifications::new().await;
    let store = &notifications.store;
    let phone = notifications.connected("phone=", "ann", false).await;
    let laptop = notifications.connected("laptop=", "ann", false).await;
    notifications.connected("bobs=", "bob", false).await;

    assert_eq!(store.find("phone=").await.unwrap(), Some(phone.clone()));
    let mut anns: Vec<String> = store
        .connections_of("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    anns.sort();
    assert_eq!(anns, ["laptop=", "phone="]);
    assert!(store.watchers().await.unwrap().is_empty());

    store.close(&phone).await.unwrap();
    assert_eq!(store.find("phone=").await.unwrap(), None);
    assert_eq!(store.connections_of("ann").await.unwrap(), [laptop]);
    // A second close (a $disconnect racing a prune) is no error.
    store.close(&phone).await.unwrap();
}

#[tokio::test]
async fn a_watcher_is_listed_until_it_closes_and_every_key_goes_with_it() {
    let notifications = Notifications::new().await;
    let store = &notifications.store;
    let operator = notifications.connected("ops=", "op", true).await;
    store.watch_all(&operator).await.unwrap();
    assert_eq!(
        store.watchers().await.unwrap(),
        std::slice::from_ref(&operator)
    );
    assert_eq!(notifications.table.item_count().await, 3);
    store.close(&operator).await.unwrap();
    assert!(store.watchers().await.unwrap().is_empty());
    assert_eq!(notifications.table.item_count().await, 0);
}

#[tokio::test]
async fn a_user_with_more_connections_than_a_page_has_them_all_listed() {
    let notifications = Notifications::new().await;
    for n in 0..130 {
        notifications
            .connected(&format!("tab-{n:03}="), "busy", false)
            .await;
    }
    assert_eq!(
        notifications
            .store
            .connections_of("busy")
            .await
            .unwrap()
            .len(),
        130
    );
}
