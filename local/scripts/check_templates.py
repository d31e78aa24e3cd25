#!/usr/bin/env python3
"""Project rules for SAM templates that cfn-lint and `sam validate` do not enforce.

Usage:
    check_templates.py TEMPLATE...   check templates; exit 1 on any finding
    check_templates.py --self-test   prove the checks catch seeded defects; exit 1 if not

Run it with the lint venv's python (local/scripts/lint-templates does): it reads the
templates with cfnlint.decode, which understands the short-form tags (!Ref, !GetAtt, ...).

Rules (see ../shared/DESIGN.md, "Reliability rules"):

1. Every batch event source - an SQS, DynamoDB or Kinesis event of an
   AWS::Serverless::Function, or any AWS::Lambda::EventSourceMapping - declares
   FunctionResponseTypes exactly [ReportBatchItemFailures], so one bad record never
   fails (and replays) its whole batch. cfn-lint accepts a misspelt value here; Lambda
   would then silently treat the function's partial-failure answer as success.

2. Every AWS::SQS::Queue has a RedrivePolicy with a deadLetterTargetArn and
   maxReceiveCount 5 - except dead ends, which are recognised by NAMING CONVENTION:
   a queue whose logical id ends in "DLQ" (a dead-letter queue) or "FailureQueue"
   (an on-failure destination, e.g. of a stream event source mapping) needs no
   RedrivePolicy. So that the convention cannot be used to dodge the rule, such a queue
   must actually be wired up as one: referenced from a RedrivePolicy, a
   DestinationConfig, a DeadLetterQueue or a DeadLetterConfig in the same template.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, Iterable

from cfnlint.decode import decode

import template_check_cli

BATCH_EVENT_TYPES = {"SQS", "DynamoDB", "Kinesis"}
REQUIRED_RESPONSE_TYPES = ["ReportBatchItemFailures"]
DEAD_END_SUFFIXES = ("DLQ", "FailureQueue")
MAX_RECEIVE_COUNT = 5
# Keys under which a reference to a queue means "this queue receives what failed".
DEAD_LETTER_KEYS = {"RedrivePolicy", "DestinationConfig", "DeadLetterQueue", "DeadLetterConfig"}


def line_of(node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""


def referenced_ids(value: Any) -> Iterable[str]:
    """Logical ids a (decoded) value refers to through Ref, GetAtt or Sub."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                if isinstance(inner, list) and inner and isinstance(inner[0], str):
                    yield inner[0]
                elif isinstance(inner, str):
                    yield inner.split(".", 1)[0]
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    for part in text.split("${")[1:]:
                        yield part.split("}", 1)[0].split(".", 1)[0]
                if isinstance(inner, list) and len(inner) > 1:
                    yield from referenced_ids(inner[1])
            else:
                yield from referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from referenced_ids(inner)


def dead_letter_targets(value: Any) -> set[str]:
    """Logical ids referenced anywhere below a dead-letter/failure-destination key."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in DEAD_LETTER_KEYS:
                found.update(referenced_ids(inner))
            found |= dead_letter_targets(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= dead_letter_targets(inner)
    return found


def check_response_types(where: str, props: Any) -> list[str]:
    value = props.get("FunctionResponseTypes") if isinstance(props, dict) else None
    if value == REQUIRED_RESPONSE_TYPES:
        return []
    shown = "missing" if value is None else json.dumps(value, default=str)
    return [f"{where}: FunctionResponseTypes must be exactly {REQUIRED_RESPONSE_TYPES}, is {shown}"]


def check_template(template: dict) -> list[str]:
    findings: list[str] = []
    resources = template.get("Resources") or {}
    dead_letter_refs = dead_letter_targets(resources)
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        where = f"{logical_id}{line_of(resource)}"

        if kind == "AWS::Serverless::Function":
            for event_id, event in (props.get("Events") or {}).items():
                if isinstance(event, dict) and event.get("Type") in BATCH_EVENT_TYPES:
                    findings += check_response_types(
                        f"{logical_id}.Events.{event_id} ({event['Type']}){line_of(event)}",
                        event.get("Properties") or {},
                    )

        elif kind == "AWS::Lambda::EventSourceMapping":
            findings += check_response_types(where, props)

        elif kind == "AWS::SQS::Queue":
            if logical_id.endswith(DEAD_END_SUFFIXES):
                if logical_id not in dead_letter_refs:
                    findings.append(
                        f"{where}: named as a dead end (*{'/*'.join(DEAD_END_SUFFIXES)}) but no "
                        "RedrivePolicy, DestinationConfig, DeadLetterQueue or DeadLetterConfig "
                        "in this template points at it; rename it or wire it up"
                    )
                continue
            findings += check_redrive(where, props.get("RedrivePolicy"))
    return findings


def check_redrive(where: str, policy: Any) -> list[str]:
    if policy is None:
        return [
            f"{where}: SQS queue without RedrivePolicy (every queue needs a DLQ; a queue that "
            f"is itself a DLQ or failure destination must be named *{' or *'.join(DEAD_END_SUFFIXES)})"
        ]
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return [f"{where}: RedrivePolicy is not valid JSON"]
    if not isinstance(policy, dict) or "deadLetterTargetArn" not in policy:
        return [f"{where}: RedrivePolicy has no deadLetterTargetArn"]
    count = policy.get("maxReceiveCount")
    if isinstance(count, (int, str)) and str(count) != str(MAX_RECEIVE_COUNT):
        return [f"{where}: RedrivePolicy maxReceiveCount is {count}, the project uses {MAX_RECEIVE_COUNT}"]
    if count is None:
        return [f"{where}: RedrivePolicy has no maxReceiveCount"]
    return []


def check_file(path: str) -> list[str]:
    template, matches = decode(path)
    if template is None:
        return [f"cannot read template: {m}" for m in matches] or ["cannot read template"]
    return check_template(template)


# --- self-test -------------------------------------------------------------------------

# Each seeded defect is a resource (or event) whose name starts with "Bad"; the check must
# report every one of them and nothing else. Written with short-form tags on purpose, so
# the test also proves the tags are decoded.
BROKEN = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        BadMisspeltStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            FunctionResponseTypes: [ReportBatchItemFailure]
        BadMissingQueue:
          Type: SQS
          Properties:
            Queue: !GetAtt GoodQueue.Arn
        GoodQueueEvent:
          Type: SQS
          Properties:
            Queue: !GetAtt GoodQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
        Api:
          Type: HttpApi
  BadMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Consumer
      EventSourceArn: !GetAtt GoodQueue.Arn
      FunctionResponseTypes: [ReportBatchItemFailures, Extra]
  GoodMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Consumer
      EventSourceArn: !GetAtt GoodQueue.Arn
      FunctionResponseTypes: [ReportBatchItemFailures]
  BadQueueWithoutRedrive:
    Type: AWS::SQS::Queue
  BadQueueRetriesTooOften:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt GoodQueueDLQ.Arn, maxReceiveCount: 50}
  GoodQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt GoodQueueDLQ.Arn
        maxReceiveCount: 5
  GoodQueueDLQ:
    Type: AWS::SQS::Queue
  BadUnusedDLQ:
    Type: AWS::SQS::Queue
  GoodStreamFailureQueue:
    Type: AWS::SQS::Queue
  GoodStreamMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Consumer
      EventSourceArn: !GetAtt Table.StreamArn
      StartingPosition: TRIM_HORIZON
      FunctionResponseTypes: [ReportBatchItemFailures]
      DestinationConfig:
        OnFailure:
          Destination: !Sub "${GoodStreamFailureQueue.Arn}"
"""

SEEDED = [
    "Consumer.Events.BadMisspeltStream",
    "Consumer.Events.BadMissingQueue",
    "BadMapping",
    "BadQueueWithoutRedrive",
    "BadQueueRetriesTooOften",
    "BadUnusedDLQ",
]


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "broken.yaml")
        with open(path, "w") as f:
            f.write(BROKEN)
        findings = check_file(path)
    problems = []
    for seeded in SEEDED:
        hits = [f for f in findings if f.startswith(seeded + " ") or f.startswith(seeded + ":")]
        if len(hits) != 1:
            problems.append(f"expected exactly one finding for {seeded}, got {len(hits)}")
    extra = [f for f in findings if not any(f.startswith(s) for s in SEEDED)]
    problems += [f"false positive: {f}" for f in extra]
    if problems:
        print("self-test FAILED: the checks no longer catch what they must:", *problems, sep="\n  ")
        print("findings were:", *findings, sep="\n  ")
        return 1
    print(f"self-test: all {len(SEEDED)} seeded defects caught, no false positives")
    return 0


def main(argv: list[str]) -> int:
    return template_check_cli.run(argv, __doc__, check_file, self_test)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
