#!/usr/bin/env python3
"""What a deployed shop gave up on, and sending it back: the AWS side of `shop-local dlq`
and `shop-local events` (README, runbook).

Usage (credentials as for `sam deploy`; run through local/scripts/dead-letters):
    dead-letters list STACK [QUEUE]         messages in the dead-letter queues, or in one
    dead-letters redrive STACK QUEUE        every message of a DLQ back to its source queue
                                            (SQS StartMessageMoveTask)
    dead-letters parked STACK [CAPABILITY]  the events the outbox relays parked
    dead-letters replay STACK [CAPABILITY]  publishes the parked events again, removing
                                            each once the bus took it
    dead-letters --self-test                checks the offline helpers

STACK is the root stack (shop-dev, nested capabilities) or one capability's stack
(shop-dev-payment). Queues are named by logical id (PaymentDLQ); a queue whose logical id
ends in DLQ is a dead-letter queue (the templates' convention, enforced by
check_templates.py). Parked events are the items of a capability table's PARKED partition
(shared/platform/src/relay.rs), replayed to the bus the stack's EventBusName parameter (or
its EventBus resource) names.
"""

import json
import sys


def resources(cloudformation, stack):
    """Every resource of `stack` and its nested stacks, as (capability, logical id, type,
    physical id); the capability is the nested stack's logical id, lower-cased and without
    its "Service" suffix, or the stack's own name's last part."""
    found = []
    pending = [(stack, stack.rsplit("-", 1)[-1])]
    while pending:
        name, capability = pending.pop()
        paginator = cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=name):
            for resource in page["StackResourceSummaries"]:
                kind = resource["ResourceType"]
                physical = resource.get("PhysicalResourceId", "")
                if kind == "AWS::CloudFormation::Stack" and physical:
                    pending.append((physical, capability_of(resource["LogicalResourceId"])))
                else:
                    found.append((capability, resource["LogicalResourceId"], kind, physical))
    return found


def capability_of(logical_id):
    """`PaymentService` -> `payment`."""
    name = logical_id[: -len("Service")] if logical_id.endswith("Service") else logical_id
    return name.lower()


def dead_letter_queues(found, wanted=None):
    return [
        (capability, logical, url)
        for capability, logical, kind, url in found
        if kind == "AWS::SQS::Queue" and logical.endswith("DLQ") and wanted in (None, logical)
    ]


def tables(found, capability=None):
    return [
        (owner, logical, name)
        for owner, logical, kind, name in found
        if kind == "AWS::DynamoDB::Table"
        and not logical.startswith("Sandbox")
        and capability in (None, owner)
    ]


def summary(body):
    try:
        event = json.loads(body)
        detail = event.get("detail", {})
        data = detail.get("data", {})
        return "%s %s event %s order %s" % (
            event.get("source", "?"),
            event.get("detail-type", "?"),
            detail.get("metadata", {}).get("eventId", "?"),
            data.get("orderId") or data.get("productId") or "-",
        )
    except (ValueError, AttributeError):
        return "not an event: " + body[:80]


def bus_name(cloudformation, stack, found):
    for _, logical, kind, physical in found:
        if kind == "AWS::Events::EventBus":
            return physical
    for parameter in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", []):
        if parameter["ParameterKey"] == "EventBusName":
            return parameter["ParameterValue"]
    raise SystemExit("dead-letters: %s names no event bus" % stack)


def list_dlqs(sqs, found, wanted):
    queues = dead_letter_queues(found, wanted)
    if not queues:
        raise SystemExit("dead-letters: no dead-letter queue %s" % wanted)
    for capability, logical, url in queues:
        seen = []
        while True:
            received = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not received:
                break
            seen.extend(received)
        for message in seen:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        print("%s/%s: %d message(s)" % (capability, logical, len(seen)))
        for message in seen:
            print("  %s  %s  (received %s times)" % (
                message["MessageId"], summary(message["Body"]),
                message.get("Attributes", {}).get("ApproximateReceiveCount", "?")))


def redrive(sqs, found, wanted):
    queues = dead_letter_queues(found, wanted)
    if not queues:
        raise SystemExit("dead-letters: no dead-letter queue %s" % wanted)
    for capability, logical, url in queues:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # No destination: SQS moves each message back to the queue it came from.
        task = sqs.start_message_move_task(SourceArn=arn)
        print("%s/%s: moving back to its source queue (task %s)" % (capability, logical, task["TaskHandle"]))


def parked_items(dynamodb, table):
    items, start = [], None
    while True:
        query = {"TableName": table, "KeyConditionExpression": "pk = :parked",
                 "ExpressionAttributeValues": {":parked": {"S": "PARKED"}}, "ConsistentRead": True}
        if start:
            query["ExclusiveStartKey"] = start
        page = dynamodb.query(**query)
        items.extend(page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def list_parked(dynamodb, found, capability):
    for owner, logical, table in tables(found, capability):
        items = parked_items(dynamodb, table)
        if not items:
            continue
        print("%s/%s: %d parked event(s)" % (owner, logical, len(items)))
        for item in items:
            event = item.get("event", {}).get("M")
            what = ("%s %s event %s" % (event["source"]["S"], event["detailType"]["S"], event["eventId"]["S"])
                    if event else "an unreadable outbox record")
            print("  %s  %s  %s: %s" % (item["parkedAt"]["S"], what, item["reason"]["S"], item["detail"]["S"]))


def replay(dynamodb, events, bus, found, capability):
    kept = 0
    for owner, logical, table in tables(found, capability):
        published = []
        for item in parked_items(dynamodb, table):
            event = item.get("event", {}).get("M")
            if not event:
                kept += 1
                print("  kept %s: unreadable record" % item["sk"]["S"])
                continue
            result = events.put_events(Entries=[{
                "EventBusName": bus, "Source": event["source"]["S"],
                "DetailType": event["detailType"]["S"], "Detail": event["detail"]["S"],
            }])
            if result.get("FailedEntryCount", 0):
                kept += 1
                print("  kept %s: %s" % (item["sk"]["S"], result["Entries"][0].get("ErrorMessage")))
                continue
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
            published.append(event["eventId"]["S"])
        if published:
            print("%s/%s: %d published" % (owner, logical, len(published)))
    if kept:
        raise SystemExit("dead-letters: %d parked event(s) could not be published" % kept)


def self_test():
    found = [
        ("payment", "PaymentQueue", "AWS::SQS::Queue", "https://q/PaymentQueue"),
        ("payment", "PaymentDLQ", "AWS::SQS::Queue", "https://q/PaymentDLQ"),
        ("payment", "RelayFailureQueue", "AWS::SQS::Queue", "https://q/RelayFailureQueue"),
        ("payment", "PaymentTable", "AWS::DynamoDB::Table", "shop-dev-payment-PaymentTable"),
        ("payment", "SandboxLedgerTable", "AWS::DynamoDB::Table", "ledger"),
        ("ordering", "OrderingDLQ", "AWS::SQS::Queue", "https://q/OrderingDLQ"),
    ]
    assert dead_letter_queues(found) == [
        ("payment", "PaymentDLQ", "https://q/PaymentDLQ"), ("ordering", "OrderingDLQ", "https://q/OrderingDLQ")]
    assert dead_letter_queues(found, "OrderingDLQ") == [("ordering", "OrderingDLQ", "https://q/OrderingDLQ")]
    assert tables(found) == [("payment", "PaymentTable", "shop-dev-payment-PaymentTable")], "not the sandbox's ledger"
    assert tables(found, "ordering") == []
    assert capability_of("PaymentService") == "payment"
    body = json.dumps({"source": "shop.ordering", "detail-type": "OrderCancelled",
                       "detail": {"metadata": {"eventId": "01J"}, "data": {"orderId": "01K"}}})
    assert summary(body) == "shop.ordering OrderCancelled event 01J order 01K"
    assert summary("}{").startswith("not an event")
    print("dead-letters: self-test passed")


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) < 3 or argv[1] not in ("list", "redrive", "parked", "replay"):
        sys.exit(__doc__)
    command, stack, rest = argv[1], argv[2], argv[3:]
    import boto3  # only for the commands that reach AWS

    found = resources(boto3.client("cloudformation"), stack)
    argument = rest[0] if rest else None
    if command == "list":
        list_dlqs(boto3.client("sqs"), found, argument)
    elif command == "redrive":
        if not argument:
            sys.exit("dead-letters: redrive needs the QUEUE to move back (e.g. PaymentDLQ)")
        redrive(boto3.client("sqs"), found, argument)
    elif command == "parked":
        list_parked(boto3.client("dynamodb"), found, argument)
    else:
        replay(boto3.client("dynamodb"), boto3.client("events"),
               bus_name(boto3.client("cloudformation"), stack, found), found, argument)


if __name__ == "__main__":
    main(sys.argv)
