//! Whole-template tests: the project's real templates, the fixture in `tests/templates/`, and
//! what the runner rejects, resource by resource.

use std::path::Path;

use super::names::EMULATED;
use super::test_support::{ROOT, load_files, options};
use super::{LoadOptions, load};
use crate::topology::{
    BusSpec, QueueMappingSpec, QueueSpec, Redrive, RouteAuth, RouteSpec, RuleSpec, RuleTarget,
    StreamMappingSpec, Topology,
};

// --- The project's real templates -------------------------------------------------------

fn project_topology(options: &LoadOptions) -> Topology {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    load(&root, options).unwrap_or_else(|error| panic!("{error}"))
}

/// The part of the project's topology that one capability (or the root, `""`) declares.
fn declared_by(topology: &Topology, owner: &str) -> Topology {
    let mine = |logical_id: &str| match owner {
        "" => !logical_id.contains('/'),
        owner => logical_id.starts_with(&format!("{owner}/")),
    };
    let functions: Vec<_> = topology
        .functions
        .iter()
        .filter(|f| mine(&f.logical_id))
        .cloned()
        .collect();
    Topology {
        tables: topology
            .tables
            .iter()
            .filter(|t| mine(&t.logical_id))
            .cloned()
            .collect(),
        queues: topology
            .queues
            .iter()
            .filter(|q| mine(&q.logical_id))
            .cloned()
            .collect(),
        buses: topology
            .buses
            .iter()
            .filter(|b| mine(&b.logical_id))
            .cloned()
            .collect(),
        secrets: topology
            .secrets
            .iter()
            .filter(|s| mine(&s.logical_id))
            .cloned()
            .collect(),
        function_urls: topology
            .function_urls
            .iter()
            .filter(|u| mine(&u.logical_id))
            .cloned()
            .collect(),
        rules: topology
            .rules
            .iter()
            .filter(|r| mine(&r.logical_id))
            .cloned()
            .collect(),
        routes: topology
            .routes
            .iter()
            .filter(|r| functions.iter().any(|f| f.name == r.function))
            .cloned()
            .collect(),
        stream_mappings: topology
            .stream_mappings
            .iter()
            .filter(|m| mine(&m.logical_id))
            .cloned()
            .collect(),
        queue_mappings: topology
            .queue_mappings
            .iter()
            .filter(|m| mine(&m.logical_id))
            .cloned()
            .collect(),
        schedules: topology
            .schedules
            .iter()
            .filter(|s| mine(&s.logical_id))
            .cloned()
            .collect(),
        not_emulated: topology
            .not_emulated
            .iter()
            .filter(|e| mine(e.split(' ').next().unwrap_or("")))
            .cloned()
            .collect(),
        cors: None,
        websocket: topology.websocket.clone().filter(|websocket| {
            websocket
                .routes
                .iter()
                .any(|route| functions.iter().any(|f| f.name == route.function))
        }),
        functions,
    }
}

/// The pages call the API from their own origin (on AWS one CloudFront distribution serves
/// both; locally shop-local does), so the API declares no CORS and shop-local answers no
/// preflight.
#[test]
fn the_root_template_declares_no_cors_since_the_pages_share_the_apis_origin() {
    let topology = project_topology(&options());
    assert!(topology.cors.is_none(), "{:?}", topology.cors);
}

#[test]
fn the_project_templates_give_the_catalog_topology() {
    let whole = project_topology(&options());
    let mut topology = declared_by(&whole, "catalog");
    topology.buses = whole.buses.clone();
    topology
        .not_emulated
        .extend(declared_by(&whole, "").not_emulated);

    assert_eq!(topology.tables.len(), 1);
    let table = &topology.tables[0];
    assert_eq!(table.logical_id, "catalog/ProductsTable");
    assert_eq!(table.name, "catalog-ProductsTable");
    assert_eq!(
        table.arn,
        "arn:aws:dynamodb:us-east-1:123456789012:table/catalog-ProductsTable"
    );
    assert_eq!(table.key.hash, ("pk".to_string(), "S".to_string()));
    assert_eq!(table.key.range, Some(("sk".to_string(), "S".to_string())));
    let indexes: Vec<(&str, &str, &str, &str)> = table
        .global_indexes
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.key.hash.0.as_str(),
                i.key.range.as_ref().map_or("", |r| r.0.as_str()),
                i.projection.as_str(),
            )
        })
        .collect();
    assert_eq!(
        indexes,
        [
            ("gsi1", "gsi1pk", "gsi1sk", "ALL"),
            ("gsi2", "gsi2pk", "gsi2sk", "ALL")
        ]
    );
    assert_eq!(table.stream_view.as_deref(), Some("NEW_IMAGE"));
    assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));

    assert_eq!(
        topology.buses,
        [BusSpec {
            logical_id: "EventBus".into(),
            name: "shop-dev".into(),
            arn: "arn:aws:events:us-east-1:123456789012:event-bus/shop-dev".into(),
        }]
    );

    let names: Vec<&str> = topology.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["catalog-CatalogApiFunction", "catalog-CatalogRelayFunction"]
    );
    let api = &topology.functions[0];
    assert_eq!(api.logical_id, "catalog/CatalogApiFunction");
    assert_eq!(api.binary, "catalog-api");
    assert_eq!(
        api.environment.get("TABLE_NAME").map(String::as_str),
        Some("catalog-ProductsTable")
    );
    assert_eq!(
        api.environment.get("RUST_LOG").map(String::as_str),
        Some("info")
    );
    assert_eq!(
        (api.timeout_seconds, api.memory_mb, api.reserved_concurrency),
        (10, 128, None)
    );
    let relay = &topology.functions[1];
    assert_eq!(relay.binary, "catalog-relay");
    assert_eq!(
        relay.environment.get("EVENT_BUS_NAME").map(String::as_str),
        Some("shop-dev")
    );
    assert_eq!(
        relay.environment.get("RUST_LOG").map(String::as_str),
        Some("info")
    );

    let jwt = RouteAuth::Jwt {
        issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_shoplocal".into(),
        audience: vec!["shoplocalclient".into()],
    };
    let routes: Vec<(&str, &RouteAuth)> = topology
        .routes
        .iter()
        .map(|r| (r.route_key.as_str(), &r.auth))
        .collect();
    assert_eq!(
        routes,
        [
            ("GET /products", &RouteAuth::None),
            ("GET /products/{productId}", &RouteAuth::None),
            ("POST /products", &jwt),
            ("PUT /products/{productId}", &jwt),
            ("DELETE /products/{productId}", &jwt),
            ("GET /health/catalog", &RouteAuth::None),
        ]
    );
    assert!(
        topology
            .routes
            .iter()
            .all(|r| r.function == "catalog-CatalogApiFunction")
    );
    assert_eq!(
        (
            topology.routes[3].method.as_str(),
            topology.routes[3].path.as_str()
        ),
        ("PUT", "/products/{productId}")
    );

    assert_eq!(topology.queues.len(), 1);
    let failures = &topology.queues[0];
    assert_eq!(failures.logical_id, "catalog/RelayFailureQueue");
    assert_eq!(failures.name, "catalog-RelayFailureQueue");
    assert_eq!(
        failures.url,
        "http://127.0.0.1:4566/123456789012/catalog-RelayFailureQueue"
    );
    assert_eq!(failures.message_retention_seconds, Some(1_209_600));
    assert_eq!(
        (
            failures.visibility_timeout_seconds,
            failures.fifo,
            &failures.redrive
        ),
        (30, false, &None)
    );

    assert_eq!(
        topology.stream_mappings,
        [StreamMappingSpec {
            logical_id: "catalog/CatalogRelayFunctionOutbox".into(),
            function: "catalog-CatalogRelayFunction".into(),
            table_name: "catalog-ProductsTable".into(),
            batch_size: 100,
            batching_window_seconds: 0,
            starting_position: "TRIM_HORIZON".into(),
            report_batch_item_failures: true,
            bisect_on_error: true,
            maximum_retry_attempts: -1,
            filters: vec![serde_json::json!(
                {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"pk": {"S": [{"prefix": "OUTBOX#"}]}}}}
            )],
            on_failure_arn: Some(failures.arn.clone()),
        }]
    );
    assert!(topology.queue_mappings.is_empty() && topology.rules.is_empty());

    for expected in [
        "UserPool (AWS::Cognito::UserPool)",
        "UserPoolClient (AWS::Cognito::UserPoolClient)",
        "UserPoolDomain (AWS::Cognito::UserPoolDomain)",
        "AdminGroup (AWS::Cognito::UserPoolGroup)",
        // shop-local serves the storefront itself.
        "WebBucket (AWS::S3::Bucket)",
        "WebBucketPolicy (AWS::S3::BucketPolicy)",
        "WebOriginAccessControl (AWS::CloudFront::OriginAccessControl)",
        "WebHeadersPolicy (AWS::CloudFront::ResponseHeadersPolicy)",
        "WebDistribution (AWS::CloudFront::Distribution)",
        "HttpApiAccessLogs (AWS::Logs::LogGroup)",
        "HttpApiStage (AWS::ApiGatewayV2::Stage)",
        "AlarmTopic (AWS::SNS::Topic)",
        "catalog/CatalogApiFunctionRole (AWS::IAM::Role)",
        "catalog/CatalogRelayFunctionRole (AWS::IAM::Role)",
        "catalog/CatalogApiInvokePermission (AWS::Lambda::Permission)",
        "catalog/RelayFailureAlarm (AWS::CloudWatch::Alarm)",
        "catalog/CatalogApiFunctionLogGroup (AWS::Logs::LogGroup)",
        "catalog/CatalogRelayFunctionLogGroup (AWS::Logs::LogGroup)",
        "catalog/CatalogFunctionErrorsAlarm (AWS::CloudWatch::Alarm)",
        "catalog/CatalogFunctionThrottlesAlarm (AWS::CloudWatch::Alarm)",
        "catalog/CatalogApi5xxRateAlarm (AWS::CloudWatch::Alarm)",
        "catalog/CatalogApiLatencyAlarm (AWS::CloudWatch::Alarm)",
        "catalog/RelayIteratorAgeAlarm (AWS::CloudWatch::Alarm)",
        "catalog/EventsParkedAlarm (AWS::CloudWatch::Alarm)",
        "catalog/CatalogDashboard (AWS::CloudWatch::Dashboard)",
    ] {
        assert!(
            topology.not_emulated.iter().any(|e| e == expected),
            "{expected} in {:?}",
            topology.not_emulated
        );
    }
    assert_eq!(
        topology.not_emulated.len(),
        26,
        "{:?}",
        topology.not_emulated
    );
    for emulated in EMULATED {
        assert!(
            !topology
                .not_emulated
                .iter()
                .any(|e| e.ends_with(&format!("({emulated})"))),
            "{emulated} is emulated"
        );
    }
}

#[test]
fn the_payment_reconciler_runs_on_its_schedule_and_nothing_else_does() {
    let whole = project_topology(&options());
    let schedules: Vec<_> = whole
        .schedules
        .iter()
        .map(|s| {
            (
                s.logical_id.as_str(),
                s.expression.as_str(),
                s.every.as_secs(),
            )
        })
        .collect();
    assert_eq!(
        schedules,
        [(
            "payment/PaymentReconcilerFunctionEveryMinute",
            "rate(1 minute)",
            60
        )]
    );
    let reconciler = whole
        .functions
        .iter()
        .find(|f| f.binary == "payment-reconciler")
        .expect("the reconciler is a function");
    assert_eq!(whole.schedules[0].function, reconciler.name);
    assert_eq!(reconciler.environment["CHARGE_SETTLE_SECONDS"], "30");
}

#[test]
fn the_project_templates_long_polls_leave_moto_most_of_its_threads() {
    // Past the limit, every DynamoDB call of every function waits for a thread that a
    // poll holds: the end-to-end tests once took 2.5 times as long for it.
    let long_polls = project_topology(&options()).long_polls();
    assert!(
        long_polls <= crate::emulator::LONG_POLL_LIMIT,
        "{long_polls} long polls; moto serves {} requests at once",
        crate::emulator::THREADS
    );
}

#[test]
fn shortened_visibility_timeouts_are_the_consumers_timeouts_and_spare_other_queues() {
    let templates = project_topology(&options());
    let mut shortened = templates.clone();
    let changed = shortened.shorten_visibility_timeouts();
    assert_eq!(changed.len(), templates.queue_mappings.len(), "{changed:?}");
    for mapping in &shortened.queue_mappings {
        let queue = shortened
            .queues
            .iter()
            .find(|q| q.arn == mapping.queue_arn)
            .unwrap();
        let function = shortened
            .functions
            .iter()
            .find(|f| f.name == mapping.function)
            .unwrap();
        assert_eq!(
            queue.visibility_timeout_seconds, function.timeout_seconds,
            "{}",
            queue.logical_id
        );
    }
    let consumed = |arn: &str| templates.queue_mappings.iter().any(|m| m.queue_arn == arn);
    for (before, after) in templates.queues.iter().zip(&shortened.queues) {
        if !consumed(&before.arn) {
            assert_eq!(
                before, after,
                "a queue no function consumes keeps its settings"
            );
        }
    }
}

#[test]
fn the_project_templates_honour_the_stage_parameter() {
    let mut prod = options();
    prod.parameters.insert("Stage".into(), "prod".into());
    let topology = project_topology(&prod);
    assert_eq!(topology.buses[0].name, "shop-prod");
    let relays: Vec<_> = topology
        .functions
        .iter()
        .filter(|f| f.binary.ends_with("-relay"))
        .collect();
    assert_eq!(relays.len(), 6, "one outbox relay per capability");
    assert!(
        relays
            .iter()
            .all(|f| f.environment["EVENT_BUS_NAME"] == "shop-prod")
    );
}

/// Each consuming capability subscribes to exactly the events DESIGN §2 says it consumes
/// through its own queue with a DLQ, and its
/// consumer reports batch item failures.
#[test]
fn each_capability_subscribes_its_own_queue_to_exactly_its_events() {
    let whole = project_topology(&options());
    let expected: [(&str, &[&str]); 5] = [
        (
            "inventory",
            &[
                "OrderCancelled",
                "OrderSubmitted",
                "ProductCreated",
                "ProductDeleted",
                "ShipmentDispatched",
            ],
        ),
        (
            "basket",
            &[
                "OrderSubmitted",
                "ProductCreated",
                "ProductDeleted",
                "ProductUpdated",
            ],
        ),
        (
            "ordering",
            &[
                "CheckoutRequested",
                "PaymentFailed",
                "PaymentSucceeded",
                "ShipmentCancellationRefused",
                "ShipmentCancelled",
                "ShipmentDelivered",
                "ShipmentDispatched",
                "StockReservationFailed",
                "StockReserved",
            ],
        ),
        ("payment", &["OrderCancelled", "OrderStockConfirmed"]),
        (
            "shipping",
            &["OrderCancellationRequested", "OrderCancelled", "OrderPaid"],
        ),
    ];
    for (capability, events) in expected {
        let mine = declared_by(&whole, capability);
        assert_eq!(mine.rules.len(), 1, "{capability}: one subscription");
        let rule = &mine.rules[0];
        assert_eq!(rule.bus_name, "shop-dev");
        let mut detail_types: Vec<&str> = rule.pattern["detail-type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        detail_types.sort();
        assert_eq!(detail_types, events, "{capability}");
        let queue = mine
            .queues
            .iter()
            .find(|q| rule.targets.iter().any(|t| t.arn == q.arn))
            .expect("the rule feeds its own queue");
        let redrive = queue.redrive.as_ref().expect("a DLQ");
        assert_eq!(redrive.max_receive_count, 5);
        assert!(
            mine.queues.iter().any(|q| q.arn == redrive.dead_letter_arn),
            "{capability}: its own DLQ"
        );
        assert_eq!(mine.queue_mappings.len(), 1);
        let mapping = &mine.queue_mappings[0];
        assert_eq!(
            (
                mapping.queue_arn.as_str(),
                mapping.report_batch_item_failures
            ),
            (queue.arn.as_str(), true)
        );
        assert!(mine.functions.iter().any(|f| f.name == mapping.function && f.binary == format!("{capability}-consumer")));
        // Payment's sandbox provider keeps its own ledger, as a real provider would.
        let own_tables = mine
            .tables
            .iter()
            .filter(|t| !t.logical_id.ends_with("/SandboxLedgerTable"))
            .count();
        assert_eq!(own_tables, 1, "{capability} owns one table");
        assert_eq!(mine.stream_mappings.len(), 1, "{capability}'s outbox relay");
        assert!(
            mine.routes
                .iter()
                .any(|r| r.route_key == format!("GET /health/{capability}"))
        );
    }
}

// --- The fixture: a nested capability with queues, a DLQ, rules and an SQS consumer ------

#[test]
fn the_fixture_gives_queues_rules_and_queue_mappings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates/root.yaml");
    let topology = load(&root, &options()).unwrap_or_else(|error| panic!("{error}"));
    let arn = |name: &str| format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let url = |name: &str| format!("http://127.0.0.1:4566/123456789012/{name}");

    assert_eq!(
        topology.queues,
        [
            QueueSpec {
                logical_id: "AuditQueue".into(),
                name: "shop-AuditQueue".into(),
                url: url("shop-AuditQueue"),
                arn: arn("shop-AuditQueue"),
                visibility_timeout_seconds: 30,
                message_retention_seconds: None,
                fifo: false,
                redrive: None,
            },
            QueueSpec {
                logical_id: "ordering/OrderEventsQueue".into(),
                name: "ordering-OrderEventsQueue".into(),
                url: url("ordering-OrderEventsQueue"),
                arn: arn("ordering-OrderEventsQueue"),
                visibility_timeout_seconds: 60,
                message_retention_seconds: Some(345_600),
                fifo: false,
                redrive: Some(Redrive {
                    dead_letter_arn: arn("ordering-OrderEventsDLQ"),
                    max_receive_count: 5,
                }),
            },
            QueueSpec {
                logical_id: "ordering/OrderEventsDLQ".into(),
                name: "ordering-OrderEventsDLQ".into(),
                url: url("ordering-OrderEventsDLQ"),
                arn: arn("ordering-OrderEventsDLQ"),
                visibility_timeout_seconds: 30,
                message_retention_seconds: Some(1_209_600),
                fifo: false,
                redrive: None,
            },
            QueueSpec {
                logical_id: "ordering/PaymentsQueue".into(),
                name: "ordering-dev-payments.fifo".into(),
                url: url("ordering-dev-payments.fifo"),
                arn: arn("ordering-dev-payments.fifo"),
                visibility_timeout_seconds: 30,
                message_retention_seconds: None,
                fifo: true,
                redrive: Some(Redrive {
                    dead_letter_arn: arn("ordering-PaymentsDLQ.fifo"),
                    max_receive_count: 3,
                }),
            },
            QueueSpec {
                logical_id: "ordering/PaymentsDLQ".into(),
                name: "ordering-PaymentsDLQ.fifo".into(),
                url: url("ordering-PaymentsDLQ.fifo"),
                arn: arn("ordering-PaymentsDLQ.fifo"),
                visibility_timeout_seconds: 30,
                message_retention_seconds: None,
                fifo: true,
                redrive: None,
            },
        ]
    );

    assert_eq!(
        topology.rules,
        [
            RuleSpec {
                logical_id: "AuditRule".into(),
                name: "shop-AuditRule".into(),
                bus_name: "shop-dev".into(),
                pattern: serde_json::json!({"source": [{"prefix": "shop."}]}),
                targets: vec![
                    RuleTarget {
                        id: "audit".into(),
                        arn: arn("shop-AuditQueue"),
                    },
                    RuleTarget {
                        id: "orders".into(),
                        arn: arn("ordering-OrderEventsQueue"),
                    },
                ],
            },
            RuleSpec {
                logical_id: "ordering/ProductEventsRule".into(),
                name: "ordering-dev-product-events".into(),
                bus_name: "shop-dev".into(),
                pattern: serde_json::json!({
                    "source": ["shop.catalog"],
                    "detail-type": ["ProductCreated", "ProductDeleted"]
                }),
                targets: vec![RuleTarget {
                    id: "order-events".into(),
                    arn: arn("ordering-OrderEventsQueue"),
                }],
            },
            RuleSpec {
                logical_id: "ordering/PaymentEventsRule".into(),
                name: "ordering-PaymentEventsRule".into(),
                bus_name: "shop-dev".into(),
                pattern: serde_json::json!({"source": ["shop.payments"]}),
                targets: vec![RuleTarget {
                    id: "payments".into(),
                    arn: arn("ordering-OrderEventsQueue"),
                }],
            },
        ]
    );

    assert_eq!(
        topology.queue_mappings,
        [
            QueueMappingSpec {
                logical_id: "ordering/OrderEventsFunctionProductEvents".into(),
                function: "ordering-OrderEventsFunction".into(),
                queue_url: url("ordering-OrderEventsQueue"),
                queue_arn: arn("ordering-OrderEventsQueue"),
                batch_size: 5,
                batching_window_seconds: 2,
                report_batch_item_failures: true,
                maximum_concurrency: Some(4),
                filters: vec![serde_json::json!({"body": {"detail-type": ["ProductCreated"]}})],
            },
            QueueMappingSpec {
                logical_id: "ordering/PaymentsMapping".into(),
                function: "ordering-OrderEventsFunction".into(),
                queue_url: url("ordering-dev-payments.fifo"),
                queue_arn: arn("ordering-dev-payments.fifo"),
                batch_size: 10,
                batching_window_seconds: 0,
                report_batch_item_failures: false,
                maximum_concurrency: None,
                filters: vec![],
            },
        ]
    );

    let functions: Vec<(&str, &str, u32)> = topology
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.binary.as_str(), f.timeout_seconds))
        .collect();
    assert_eq!(
        functions,
        [
            ("ordering-OrderEventsFunction", "ordering-events", 20),
            ("ordering-dev-api", "ordering-api", 20)
        ]
    );
    assert_eq!(
        topology.functions[0].environment["QUEUE_URL"],
        url("ordering-OrderEventsQueue")
    );
    assert_eq!(topology.functions[0].environment["STAGE"], "dev");

    assert_eq!(
        topology.routes,
        [RouteSpec {
            route_key: "POST /orders".into(),
            method: "POST".into(),
            path: "/orders".into(),
            function: "ordering-dev-api".into(),
            auth: RouteAuth::Jwt {
                issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_shoplocal".into(),
                audience: vec!["shoplocalclient".into()],
            },
        }]
    );
    assert!(topology.stream_mappings.is_empty());
    assert_eq!(topology.tables.len(), 0);
    assert_eq!(
        topology.not_emulated,
        [
            "UserPool (AWS::Cognito::UserPool)",
            "UserPoolClient (AWS::Cognito::UserPoolClient)",
            "ordering/OrderEventsQueuePolicy (AWS::SQS::QueuePolicy)",
            "ordering/OrderEventsFunctionRole (AWS::IAM::Role)",
            "ordering/ApiFunctionRole (AWS::IAM::Role)",
            "ordering/DlqAlarm (AWS::CloudWatch::Alarm)",
        ]
    );
}

#[test]
fn what_cannot_run_locally_is_rejected_naming_the_resource() {
    const TABLE: &str = "  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
";
    const QUEUE: &str = "  Queue: {Type: AWS::SQS::Queue}\n";
    let function = |events: &str| {
        format!(
            "  Fn:
    Type: AWS::Serverless::Function
    Metadata: {{BuildProperties: {{Binary: fn}}}}
    Properties:
      Events:
        Source:
{events}"
        )
    };
    let cases = [
            (
                format!("{TABLE}      LocalSecondaryIndexes: []\n"),
                "Table: not supported by the local runner: LocalSecondaryIndexes",
            ),
            (
                TABLE.replace("KeyType: HASH}]", "KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]"),
                "Table: KeySchema[1]: sk is not in AttributeDefinitions",
            ),
            (
                format!(
                    "{TABLE}{}",
                    function("          Type: DynamoDB\n          Properties: {Stream: !GetAtt Table.StreamArn, StartingPosition: LATEST}\n")
                ),
                "Fn: table Table has no StreamSpecification",
            ),
            (
                format!(
                    "{TABLE}      StreamSpecification: {{StreamViewType: KEYS_ONLY}}\n{}",
                    function("          Type: DynamoDB\n          Properties: {Stream: !GetAtt Table.StreamArn}\n")
                ),
                "Fn: Events.Source.Properties.StartingPosition is required",
            ),
            (
                format!(
                    "{QUEUE}{}",
                    function("          Type: SQS\n          Properties: {Queue: !GetAtt Queue.Arn, FunctionResponseTypes: [Other]}\n")
                ),
                "Fn: Events.Source.Properties.FunctionResponseTypes: the only response type is ReportBatchItemFailures",
            ),
            (
                format!(
                    "{QUEUE}{}",
                    function("          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n            FilterCriteria: {Filters: [{Pattern: '{nope'}]}\n")
                ),
                "Fn: Events.Source.Properties.FilterCriteria.Filters[0].Pattern is not valid JSON",
            ),
            (
                format!(
                    "{TABLE}      StreamSpecification: {{StreamViewType: KEYS_ONLY}}\n  Topic: {{Type: AWS::SNS::Topic}}\n{}",
                    function("          Type: DynamoDB\n          Properties:\n            Stream: !GetAtt Table.StreamArn\n            StartingPosition: LATEST\n            DestinationConfig: {OnFailure: {Destination: !Ref Topic}}\n")
                ),
                "only SQS destinations are emulated",
            ),
            (
                "  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      RedrivePolicy: {deadLetterTargetArn: arn:aws:sqs:us-east-1:123456789012:elsewhere, maxReceiveCount: 3}\n".to_string(),
                "Queue: RedrivePolicy.deadLetterTargetArn arn:aws:sqs:us-east-1:123456789012:elsewhere is not a queue the templates declare",
            ),
            (
                "  A: {Type: AWS::SQS::Queue, Properties: {QueueName: same}}\n  B: {Type: AWS::SQS::Queue, Properties: {QueueName: same}}\n".to_string(),
                "B: queue name same is also A's",
            ),
            (
                "  Rule:\n    Type: AWS::Events::Rule\n    Properties: {EventBusName: other, EventPattern: {source: [x]}}\n".to_string(),
                "Rule: EventBusName other is not a bus the templates declare",
            ),
            (
                "  Rule:\n    Type: AWS::Events::Rule\n    Properties: {ScheduleExpression: rate(1 hour)}\n".to_string(),
                "Rule: not supported by the local runner: scheduled rules",
            ),
            (
                format!(
                    "{QUEUE}  Rule:\n    Type: AWS::Events::Rule\n    Properties:\n      EventPattern: {{source: [x]}}\n      Targets: [{{Id: q, Arn: !GetAtt Queue.Arn, InputPath: $.detail}}]\n"
                ),
                "Rule: not supported by the local runner: Targets[0].InputPath",
            ),
            (
                format!("{QUEUE}  Api: {{Type: AWS::ApiGatewayV2::Api}}\n  Other: {{Type: AWS::ApiGatewayV2::Api}}\n"),
                "Other: not supported by the local runner: a second HTTP API (the first is Api)",
            ),
            (
                "  App:\n    Type: AWS::Serverless::Application\n    Properties: {Location: {ApplicationId: x, SemanticVersion: 1.0.0}}\n".to_string(),
                "App: not supported by the local runner: Location must be the path of a local template",
            ),
        ];
    for (resources, expected) in cases {
        let template = format!("Resources:\n{resources}");
        let error = match load_files(&[(ROOT, &template)], &options()) {
            Ok(topology) => panic!("expected {expected:?} from\n{template}\ngot {topology:?}"),
            Err(error) => error.to_string(),
        };
        assert!(
            error.starts_with("/t/template.yaml: ") && error.contains(expected),
            "expected {expected:?} from\n{template}\ngot {error}"
        );
    }
}
