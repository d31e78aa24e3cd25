//! End to end: the real `shop-local up`, on a free port, running the real function
//! binaries against its own moto. Each test starts its own stack (own run directory,
//! own emulator) and checks that stopping it leaves no process behind.

use std::process::Command;
use std::time::Instant;

use crate::support::{Runner, STARTUP_LIMIT, Tail, project_topology, repo_root};
use serde_json::{Value, json};

fn product(name: &str) -> Value {
    json!({"name": name, "category": "e2e", "price": {"amount": 1500, "currency": "USD"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_works_through_the_gateway_and_sigint_stops_everything() {
    let stack = Runner::start(&[]);
    let admin = stack.token("admin-e2e", true);
    let shopper = stack.token("shopper-e2e", false);

    // The bus feed, as a developer would watch it.
    let tail = Tail::start(&stack);

    let (status, problem) = stack
        .call("POST", "/products", None, Some(product("Nope")))
        .await;
    assert_eq!(
        (status, problem["message"].clone()),
        (401, json!("Unauthorized"))
    );
    let (status, _) = stack
        .call(
            "POST",
            "/products",
            Some("not-a-token"),
            Some(product("Nope")),
        )
        .await;
    assert_eq!(status, 401);
    let (status, problem) = stack
        .call("POST", "/products", Some(&shopper), Some(product("Nope")))
        .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["status"], 403);

    let (status, created) = stack
        .call(
            "POST",
            "/products",
            Some(&admin),
            Some(product("E2E Teapot")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, listed) = stack
        .call("GET", "/products?category=e2e", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect::<Vec<_>>(),
        vec![json!(id)]
    );
    let (status, fetched) = stack
        .call("GET", &format!("/products/{id}"), None, None)
        .await;
    assert_eq!((status, fetched), (200, created.clone()));
    let oversized = Value::String("x".repeat(10 * 1024 * 1024));
    let (status, problem) = stack
        .call("POST", "/products", Some(&admin), Some(oversized))
        .await;
    assert_eq!(
        (status, problem["message"].clone()),
        (413, json!("Request Entity Too Large"))
    );
    let (status, missing) = stack.call("GET", "/nowhere", None, None).await;
    assert_eq!(
        (status, missing["message"].clone()),
        (404, json!("Not Found"))
    );

    // ProductCreated crosses the bus: outbox → stream → relay → EventBridge → tail.
    let deadline = Instant::now() + STARTUP_LIMIT;
    let event = loop {
        let line = tail
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("ProductCreated on the bus");
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["detail"]["data"]["productId"] == json!(id) {
            break event;
        }
    };
    assert_eq!(event["source"], "shop.catalog");
    assert_eq!(event["detail-type"], "ProductCreated");
    assert_eq!(event["detail"]["data"]["name"], "E2E Teapot");
    assert_eq!(event["detail"]["metadata"]["schemaVersion"], 1);
    drop(tail);

    let started = stack.started_pids().await;
    assert!(
        started.len() >= 3,
        "moto, the API and the relay: {started:?}"
    );
    stack.stop_with("INT", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_function_gets_an_error_and_sigterm_leaves_no_process() {
    let stack = Runner::start(&["--kill-probability", "1.0"]);
    let (status, body) = stack.call("GET", "/products", None, None).await;
    assert_eq!(
        (status, body),
        (500, json!({"message": "Internal Server Error"}))
    );
    let (_, stats) = stack.call("GET", "/_local/stats", None, None).await;
    let api = stats["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["binary"] == "catalog-api")
        .unwrap()
        .clone();
    assert!(api["crashes"].as_u64().unwrap() >= 1, "{api}");
    assert_eq!(
        api["pids"],
        json!([]),
        "the killed process is gone, not left behind"
    );
    assert!(stats["faults"]["injected"]["kills"].as_u64().unwrap() >= 1);

    let started = stack.started_pids().await;
    stack.stop_with("TERM", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_runs_every_sample_event_against_its_function() {
    let stack = Runner::start(&[]);
    let mut invoked = 0;
    for capability in std::fs::read_dir(repo_root().join("events")).unwrap() {
        let capability = capability.unwrap().path();
        let name = capability
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for file in std::fs::read_dir(&capability).unwrap() {
            let file = file.unwrap().path();
            let kind = file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .split('-')
                .next()
                .unwrap()
                .to_owned();
            let function = format!("{name}-{kind}");
            let output = stack.command(&["invoke", &function, "--event", file.to_str().unwrap()]);
            let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
                panic!(
                    "{}: {}",
                    file.display(),
                    String::from_utf8_lossy(&output.stderr)
                )
            });
            assert!(output.status.success(), "{}: {printed}", file.display());
            assert_eq!(printed["outcome"], "success", "{}", file.display());
            assert!(printed["requestId"].is_string());
            invoked += 1;
        }
    }
    assert!(invoked >= 8, "every sample event: {invoked}");
    let output = stack.command(&[
        "invoke",
        "no-such-function",
        "--event",
        "events/catalog/api-health.json",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no function no-such-function"));

    // `env` prints what the function runs with here, for `cargo lambda watch --env-file`.
    let output = stack.command(&["env", "catalog-api"]);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    let moto = crate::support::invariants::stats(&stack).await["motoEndpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    for expected in [
        "TABLE_NAME=catalog-ProductsTable".to_owned(),
        "CURSOR_SECRET_ID=catalog-CursorKeySecret".to_owned(),
        "CAPABILITY=catalog".to_owned(),
        format!("AWS_ENDPOINT_URL={moto}"),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "{expected} in {printed}"
        );
    }
    assert!(
        !printed.contains("AWS_LAMBDA_RUNTIME_API"),
        "the runtime API is the runner's own: {printed}"
    );
    let output = stack.command(&["env", "no-such-function"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no function no-such-function"));

    let started = stack.started_pids().await;
    stack.stop_with("INT", &started);
}

#[test]
fn commands_without_a_running_stack_say_so() {
    let run_dir = std::env::temp_dir().join(format!("shop-local-none-{}", ulid::Ulid::generate()));
    for args in [
        vec!["tail"],
        vec![
            "invoke",
            "catalog-api",
            "--event",
            "events/catalog/api-health.json",
        ],
        vec!["token", "--user", "someone"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(&args)
            .arg("--run-dir")
            .arg(&run_dir)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("shop-local up"),
            "{args:?}"
        );
    }
}

/// The runbook's tools against a running stack: a dead letter is listed, then redriven to
/// the queue it came from and applied there; a parked event is listed, then replayed onto
/// the bus and applied by its consumer, and leaves the parked store.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_redriven_and_parked_events_replayed() {
    let stack = Runner::start(&[]);
    let shopper = stack.token("dead-letter-shopper", false);
    let (_, stats) = stack.call("GET", "/_local/stats", None, None).await;
    let config =
        crate::support::invariants::moto_config(stats["motoEndpoint"].as_str().unwrap()).await;
    let queue_url = |id: &str| {
        stats["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["logicalId"] == id)
            .and_then(|q| q["url"].as_str())
            .unwrap()
            .to_owned()
    };
    let table_named = |id: &str| {
        stats["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["logicalId"] == id)
            .and_then(|t| t["name"].as_str())
            .unwrap()
            .to_owned()
    };
    // A product basket has never heard of, as the bus would carry its creation.
    let created = |product: &str| {
        json!({"version": "0", "id": ulid::Ulid::generate().to_string(), "detail-type": "ProductCreated",
               "source": "shop.catalog", "account": "123456789012", "time": "2026-12-07T10:00:00Z",
               "region": "us-east-1", "resources": [],
               "detail": {"metadata": {"eventId": ulid::Ulid::generate().to_string(), "occurredAt": "2026-12-07T10:00:00.000Z",
                                       "correlationId": "runbook", "schemaVersion": 1},
                          "data": {"productId": product, "name": "Runbook Lamp", "description": "", "category": "e2e",
                                   "price": {"amount": 900, "currency": "USD"}, "version": 1}}})
    };
    let basket_knows = |product: String| {
        let (stack, shopper) = (&stack, &shopper);
        async move {
            crate::support::eventually("basket knows the product", async || {
                let (status, _) = stack
                    .call(
                        "PUT",
                        &format!("/basket/items/{product}"),
                        Some(shopper),
                        Some(json!({"quantity": 1})),
                    )
                    .await;
                (status == 200).then_some(())
            })
            .await
        }
    };

    // A dead letter in basket's DLQ.
    let dead = ulid::Ulid::generate().to_string();
    aws_sdk_sqs::Client::new(&config)
        .send_message()
        .queue_url(queue_url("basket/BasketDLQ"))
        .message_body(created(&dead).to_string())
        .send()
        .await
        .unwrap();
    let listed = stack.command(&["dlq", "list"]);
    let printed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        printed.contains("basket/BasketDLQ: 1 message(s)"),
        "{printed}"
    );
    assert!(printed.contains("shop.catalog ProductCreated"), "{printed}");
    assert!(
        printed.contains("payment/PaymentDLQ: 0 message(s)"),
        "{printed}"
    );
    let listed_again =
        String::from_utf8_lossy(&stack.command(&["dlq", "list", "BasketDLQ"]).stdout).into_owned();
    assert!(
        listed_again.contains("basket/BasketDLQ: 1 message(s)"),
        "listing takes nothing away: {listed_again}"
    );
    let redriven = stack.command(&["dlq", "redrive", "BasketDLQ"]);
    assert!(
        redriven.status.success(),
        "{}",
        String::from_utf8_lossy(&redriven.stderr)
    );
    assert!(
        String::from_utf8_lossy(&redriven.stdout)
            .contains("1 message(s) back to basket/BasketQueue")
    );
    basket_knows(dead).await;

    // A parked event in catalog's table (as its relay parks one the bus refused).
    let parked = ulid::Ulid::generate().to_string();
    let event = created(&parked);
    let table = table_named("catalog/ProductsTable");
    let event_id = event["detail"]["metadata"]["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = serde_json::json!({
        "pk": {"S": "PARKED"}, "sk": {"S": format!("2026-12-07T10:00:00.000Z#{event_id}")},
        "reason": {"S": "refused"}, "detail": {"S": "MalformedDetail: seeded by the test"},
        "parkedAt": {"S": "2026-12-07T10:00:00.000Z"},
        "event": {"M": {
            "pk": {"S": format!("OUTBOX#{event_id}")}, "sk": {"S": "EVENT"}, "eventId": {"S": event_id},
            "source": {"S": "shop.catalog"}, "detailType": {"S": "ProductCreated"},
            "detail": {"S": event["detail"].to_string()}, "correlationId": {"S": "runbook"},
            "occurredAt": {"S": "2026-12-07T10:00:00.000Z"}, "expiresAt": {"N": "1"}}}
    });
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_json::from_value::<std::collections::HashMap<String, Value>>(item)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, attribute(&v)))
            .collect();
    aws_sdk_dynamodb::Client::new(&config)
        .put_item()
        .table_name(&table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let listed = stack.command(&["events", "parked"]);
    let printed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        printed.contains("catalog/ProductsTable: 1 parked event(s)"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("shop.catalog ProductCreated event {event_id}")),
        "{printed}"
    );
    let replayed = stack.command(&["events", "replay", "catalog"]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("1 published, 0 kept"));
    basket_knows(parked).await;
    let listed = stack.command(&["events", "parked"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "nothing left parked"
    );

    let started = stack.started_pids().await;
    stack.stop_with("TERM", &started);
}

/// A DynamoDB-JSON value (`{"S": ...}`, `{"N": ...}`, `{"M": {...}}`) as the SDK's type.
fn attribute(value: &Value) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (kind, inner) = value.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(inner.as_str().unwrap().to_owned()),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        ),
        other => panic!("{other}"),
    }
}

/// The JWT attack suite through the local gateway: every forged or broken token is a 401
/// on a protected route, as API Gateway's authorizer answers; the honest one passes; and
/// the issuer's keys are published where a verifier finds them.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_refuses_every_forged_token_and_publishes_its_keys() {
    let stack = Runner::start(&[]);
    let issuer = shop_local::issuer::Issuer::load(&stack.run_dir).unwrap();
    let other_dir =
        std::env::temp_dir().join(format!("shop-local-other-{}", ulid::Ulid::generate()));
    let other = shop_local::issuer::Issuer::load_or_create(&other_dir).unwrap();
    let mut accepted = Vec::new();
    for (attack, token) in shop_local::issuer::forged_tokens(&issuer, &other) {
        let (status, body) = stack.call("GET", "/basket", Some(&token), None).await;
        if status != 401 {
            accepted.push(format!("{attack}: {status} {body}"));
        } else {
            assert_eq!(body, json!({"message": "Unauthorized"}), "{attack}");
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
    let honest = stack.token("honest-shopper", false);
    let (status, _) = stack
        .call_with_headers(
            "GET",
            "/basket",
            None,
            None,
            &[("authorization", &format!("bearer {honest}"))],
        )
        .await;
    assert_eq!(status, 200, "the scheme is case-insensitive");

    let (status, discovery) = stack
        .call("GET", "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", stack.url)
    );
    let (status, jwks) = stack
        .call("GET", "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let _ = std::fs::remove_dir_all(other_dir);
    let started = stack.started_pids().await;
    stack.stop_with("TERM", &started);
}

/// The storefront's side of the gateway: its files with CloudFront's headers, its config,
/// the sign-in endpoints a browser goes through (authorization code with PKCE), and no
/// CORS: the pages call the API from their own origin (on AWS, one CloudFront
/// distribution serves both), as the root template says.
#[tokio::test(flavor = "multi_thread")]
async fn the_storefront_is_served_signs_in_with_pkce_and_calls_the_api_from_its_own_origin() {
    let stack = Runner::start(&[]);

    let page = stack.request("GET", "/", &[], "").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let config: Value =
        serde_json::from_slice(stack.request("GET", "/config.json", &[], "").await.body()).unwrap();
    assert_eq!(config["apiUrl"], stack.url.as_str());
    assert_eq!(config["redirectUri"], format!("{}/", stack.url));

    // The sign-in a browser makes: the form, its answer, the code exchanged with the verifier.
    let verifier = "a-verifier-of-forty-three-characters-or-more";
    let challenge = shop_local::web::s256(verifier);
    let query = format!(
        "response_type=code&client_id={}&redirect_uri={}%2F&state=st&code_challenge={challenge}&code_challenge_method=S256",
        config["clientId"].as_str().unwrap(),
        stack.url.replace(':', "%3A").replace('/', "%2F"),
    );
    let form = stack
        .request("GET", &format!("/oauth2/authorize?{query}"), &[], "")
        .await;
    assert_eq!(form.status(), 200);
    assert!(String::from_utf8_lossy(form.body()).contains("name=\"username\""));
    let signed_in = stack
        .request(
            "POST",
            "/oauth2/authorize",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("{query}&username=grace"),
        )
        .await;
    assert_eq!(signed_in.status(), 302);
    let location = signed_in.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        location.starts_with(&format!("{}/?code=", stack.url)),
        "{location}"
    );
    let exchange = format!(
        "grant_type=authorization_code&client_id={}&code={code}&redirect_uri={}%2F&code_verifier={verifier}",
        config["clientId"].as_str().unwrap(),
        stack.url.replace(':', "%3A").replace('/', "%2F"),
    );
    let tokens = stack
        .request(
            "POST",
            "/oauth2/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &exchange,
        )
        .await;
    assert_eq!(
        tokens.status(),
        200,
        "{}",
        String::from_utf8_lossy(tokens.body())
    );
    let tokens: Value = serde_json::from_slice(tokens.body()).unwrap();
    let (status, basket) = stack
        .call("GET", "/basket", tokens["access_token"].as_str(), None)
        .await;
    assert_eq!((status, basket["total"]["amount"].clone()), (200, json!(0)));

    // No CORS: the storefront calls the API from its own origin (on AWS through its
    // CloudFront distribution, which also serves the pages), so a browser never needs a
    // preflight; one from another site gets no access-control header, nor does a read.
    let topology = project_topology();
    assert!(
        topology.cors.is_none(),
        "the root template declares no CorsConfiguration"
    );
    let foreign = stack
        .request(
            "OPTIONS",
            "/basket/checkout",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let listed = stack
        .request(
            "GET",
            "/products",
            &[("origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(listed.status(), 200);
    assert!(
        listed
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // What the distribution's catalog behaviour caches by.
    assert_eq!(listed.headers()["cache-control"], "public, max-age=5");

    let started = stack.started_pids().await;
    stack.stop_with("TERM", &started);
}
