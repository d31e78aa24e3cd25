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

8. Alarms reach someone and dead ends are watched. Every AWS::CloudWatch::Alarm has
   AlarmActions and OKActions, each a non-empty list (an alarm nobody is told about is a
   graph; without OKActions the on-call person never learns it cleared), and declares
   TreatMissingData (the default, "missing", leaves an event-driven metric that is silent
   when all is well in INSUFFICIENT_DATA, so the choice must be made on purpose). Every
   dead end of rule 2 (*DLQ, *FailureQueue) is watched: some alarm in the template refers
   to it (its Dimensions or its Metrics), since a message there is one the system gave up on.

9. Data outlives its stack in prod. Every AWS::DynamoDB::Table and AWS::Cognito::UserPool
   keeps UpdateReplacePolicy Retain (a replacement never drops data, in any stage) and, in
   prod, DeletionPolicy Retain and deletion protection: DeletionPolicy is Retain or
   Fn::If [C, Retain, ...], and a table's DeletionProtectionEnabled true or
   Fn::If [C, true, ...] (a user pool's DeletionProtection ACTIVE or Fn::If [C, ACTIVE,
   ...]), C a condition that is exactly Fn::Equals [Ref Stage, prod]. A table also has
   point-in-time recovery (PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled
   true). An intrinsic in DeletionPolicy needs the AWS::LanguageExtensions transform,
   listed before the SAM one (CloudFormation alone takes a literal only), so a template
   using one without it is a finding at Transform. The one exception is a scratch table
   of a test double, recognised by NAMING CONVENTION (logical id starting "Sandbox") and
   only if it carries a Condition, so that it exists only where the double is deployed.

10. prod never charges through the sandbox by default. A template with both a Stage and a
   PaymentProviderUrl parameter declares a Rule whose RuleCondition is exactly
   Fn::Equals [Ref Stage, prod] and one of whose Assertions refers to PaymentProviderUrl,
   so that a prod deploy without a provider fails before anything changes.

Rules 3-7 are least privilege (DESIGN.md §1: a service owns its data, nobody else reads or
writes it; §4: `source` is shop.<capability>), judged on what a function can EFFECTIVELY do.
Rule 6 makes that its role's statements: every function names its own role, so nothing is
granted by SAM behind the template's back. Rules 3-5 judge every Allow statement a function
can act under - Deny statements only take rights away and are not judged:
  - the PolicyDocument of every AWS::IAM::Role policy, AWS::IAM::Policy, ::ManagedPolicy and
    ::RolePolicy in the template;
  - the `Policies` of an AWS::Serverless::Function (or ::StateMachine), and of
    Globals.Function, where they take effect: for a function only if it names no Role (SAM
    applies Policies to the role it generates and ignores them beside a Role; rule 6 reports
    both cases). Inline policy documents, and SAM policy templates (DynamoDBCrudPolicy,
    SQSPollerPolicy, AWSSecretsManagerGetSecretValuePolicy, EventBridgePutEventsPolicy, ...)
    expanded with the pinned SAM translator's own definitions, so what is judged is what SAM
    will grant, not the parameter alone;
  - what a function reaches through its other properties, judged as if it were a Resource:
    the Queue/Stream/Broker/Cluster of a pull event source (SQS, DynamoDB, Kinesis, MQ, MSK,
    DocumentDB) and its DestinationConfig targets, the function's DeadLetterQueue TargetArn
    and EventInvokeConfig destinations; likewise the EventSourceArn and DestinationConfig of
    an AWS::Lambda::EventSourceMapping and the Destination of every AWS::Serverless::Connector
    (also those embedded under a resource's Connectors).

3. Own resources only: every Resource (as above) is derived from a resource declared in
   this same template, or is one of the platform parameters EventBusArn / EventBusName in a
   statement whose every Action is events:PutEvents or events:DescribeEventBus. Derived
   means a Ref or GetAtt of a logical id under Resources - except a nested stack
   (AWS::Serverless::Application, AWS::CloudFormation::Stack), whose outputs are other
   stacks' resources - or a Sub or Join whose every variable is such a reference or a
   scaffolding pseudo parameter (AWS::Partition, AWS::Region, AWS::AccountId,
   AWS::URLSuffix), with at least one reference, each reference a whole ARN segment: only
   ':' or '/' may touch it. So `${OrderingTable.Arn}/index/gsi1` and
   `arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Queue.QueueName}` are
   owned; `table/${OrderingTable}-archive`, `table/shop-${Stage}-inventory`, a literal ARN
   or name, any other parameter (an InventoryTableArn in ordering's template),
   Fn::ImportValue and any other intrinsic are not. Fn::If: every branch is judged;
   AWS::NoValue grants nothing. Also findings, because they cannot be scoped to this
   template's resources: a managed policy given in Policies (a name, an ARN or a reference,
   unless a Ref to an AWS::IAM::ManagedPolicy declared here, which is judged where it is
   declared), a Policies entry that is neither a policy document nor a known SAM policy
   template, and a state machine's Role that is not a Ref/GetAtt of an AWS::IAM::Role
   declared here. The one exception is rule 4's X-Ray statement below.

4. No wildcard resources: no Resource (as above) contains an IAM wildcard, "*" or "?",
   anywhere - judged after expansion, so `${Table.Arn}/index/*` is a finding and so are
   DynamoDBCrudPolicy and DynamoDBReadPolicy, which grant `table/<name>/index/*`; name each
   index the function queries. The Arn of an AWS::Logs::LogGroup counts as one: it ends in
   ":*". An Allow statement with NotResource (everything but what it names) is a finding
   too. Two exceptions, each for exactly what cannot be written without one:
     - Resource "*" in a statement whose every Action is xray:PutTraceSegments or
       xray:PutTelemetryRecords (Tracing: Active): X-Ray defines no resource types for them
       (IAM service authorization reference), so "*" is the only Resource that grants them;
     - `arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${G}:log-stream:*`,
       G an AWS::Logs::LogGroup declared here, in a statement whose every Action is
       logs:CreateLogStream or logs:PutLogEvents: Lambda names the streams at run time.
       Whose group G may be is rule 7;
     - `arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${A}/${S}/POST/@connections/*`,
       A an AWS::ApiGatewayV2::Api and S an AWS::ApiGatewayV2::Stage declared here, in a
       statement whose every Action is execute-api:ManageConnections: API Gateway names the
       connections at run time (PostToConnection on this API's stage only).

5. PutEvents only as itself: an Allow statement whose Action matches events:PutEvents
   (events:PutEvents, events:*, events:Put*, "*", or a NotAction that does not exclude it)
   carries Condition StringEquals events:source with exactly one value, shop.<capability>,
   where <capability> is the folder of functions/<capability>/template.yaml. So
   EventBridgePutEventsPolicy, an EventInvokeConfig EventBridge destination and a
   Connector writing to an AWS::Events::EventBus are findings (SAM grants PutEvents for
   them with no condition), and in a template outside functions/<capability>/ (the root
   template) every PutEvents grant is one.

6. Every function has its own explicit role: an AWS::Serverless::Function or
   AWS::Lambda::Function has `Role: !GetAtt <Role>.Arn` (its own or from Globals.Function),
   <Role> an AWS::IAM::Role declared in this template that no other function uses. Without
   a Role SAM generates one carrying AWS managed policies whose statements are on Resource
   "*" (AWSLambdaBasicExecutionRole, and X-Ray write access for Tracing: Active,
   AWSLambdaSQSQueueExecutionRole / AWSLambdaDynamoDBExecutionRole for an SQS / DynamoDB
   event), so a consumer could read any queue and a relay any table's stream. `Policies`
   beside a Role is a finding too: SAM ignores it, so it would only mislead. Every
   AWS::IAM::Role: no ManagedPolicyArns (AWS's grant on "*", and a managed policy can be
   attached anywhere: write the statements inline), and its trust policy lets only the
   Lambda service assume it (every Allow statement's Principal is exactly
   {Service: lambda.amazonaws.com}, no NotPrincipal).

7. Logs only into the function's own log group. A function's own group is the
   AWS::Logs::LogGroup declared here that its LoggingConfig.LogGroup names by Ref (merged
   with Globals.Function's LoggingConfig, as SAM does), and no two functions share one.
   Every Allow statement that grants a logs: action (logs:*, "*", a NotAction that does not
   exclude logs:*, ...) in a policy of a function's role (its inline Policies, or an
   AWS::IAM::Policy / ::ManagedPolicy / ::RolePolicy attached to it), or in the Policies of
   a function without a Role: grants only logs:CreateLogStream and logs:PutLogEvents
   (Lambda creates no group: the group is declared), the function names its own group, and
   every Resource is that group's streams (the form in rule 4, or its Arn).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import json
import os
import re
import sys
import tempfile
from typing import Any, Iterable

from cfnlint.decode import decode
from samtranslator.policy_template_processor.exceptions import (
    InsufficientParameterValues,
    InvalidParameterValues,
)
from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

import template_check_cli

BATCH_EVENT_TYPES = {"SQS", "DynamoDB", "Kinesis"}
REQUIRED_RESPONSE_TYPES = ["ReportBatchItemFailures"]
DEAD_END_SUFFIXES = ("DLQ", "FailureQueue")
MAX_RECEIVE_COUNT = 5
# Keys under which a reference to a queue means "this queue receives what failed".
DEAD_LETTER_KEYS = {"RedrivePolicy", "DestinationConfig", "DeadLetterQueue", "DeadLetterConfig"}
ALARM = "AWS::CloudWatch::Alarm"
# Where an alarm names what it watches.
ALARM_METRIC_KEYS = ("Dimensions", "Metrics")


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
    return [f"{where}: rule 1: FunctionResponseTypes must be exactly {REQUIRED_RESPONSE_TYPES}, is {shown}"]


def check_template(template: dict) -> list[str]:
    findings: list[str] = []
    resources = template.get("Resources") or {}
    dead_letter_refs = dead_letter_targets(resources)
    watched = watched_ids(resources)
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
                        f"{where}: rule 2: named as a dead end (*{'/*'.join(DEAD_END_SUFFIXES)}) but no "
                        "RedrivePolicy, DestinationConfig, DeadLetterQueue or DeadLetterConfig "
                        "in this template points at it; rename it or wire it up"
                    )
                if logical_id not in watched:
                    findings.append(
                        f"{where}: rule 8: a dead end no alarm watches: a message here is one the "
                        "system gave up on, so alarm on its ApproximateNumberOfMessagesVisible"
                    )
                continue
            findings += check_redrive(where, props.get("RedrivePolicy"))

        elif kind == ALARM:
            findings += check_alarm(where, props)
    return findings


def watched_ids(resources: dict) -> set[str]:
    """Logical ids some alarm's Dimensions or Metrics refer to."""
    found: set[str] = set()
    for resource in resources.values():
        if isinstance(resource, dict) and resource.get("Type") == ALARM:
            props = resource.get("Properties") or {}
            for key in ALARM_METRIC_KEYS:
                found.update(referenced_ids(props.get(key)))
    return found


def check_alarm(where: str, props: Any) -> list[str]:
    findings = []
    missing = []
    for key in ("AlarmActions", "OKActions"):
        actions = props.get(key) if isinstance(props, dict) else None
        if not is_intrinsic(actions) and not (isinstance(actions, list) and actions):
            missing.append(key)
    if missing:
        findings.append(
            f"{where}: rule 8: no {' and no '.join(missing)}: the alarm must tell someone when it fires and when it clears"
        )
    if not isinstance(props, dict) or "TreatMissingData" not in props:
        findings.append(f"{where}: rule 8: no TreatMissingData: choose how a silent metric counts")
    return findings


def check_redrive(where: str, policy: Any) -> list[str]:
    if policy is None:
        return [
            f"{where}: rule 2: SQS queue without RedrivePolicy (every queue needs a DLQ; a queue that "
            f"is itself a DLQ or failure destination must be named *{' or *'.join(DEAD_END_SUFFIXES)})"
        ]
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return [f"{where}: rule 2: RedrivePolicy is not valid JSON"]
    if not isinstance(policy, dict) or "deadLetterTargetArn" not in policy:
        return [f"{where}: rule 2: RedrivePolicy has no deadLetterTargetArn"]
    count = policy.get("maxReceiveCount")
    if isinstance(count, (int, str)) and str(count) != str(MAX_RECEIVE_COUNT):
        return [f"{where}: rule 2: RedrivePolicy maxReceiveCount is {count}, the project uses {MAX_RECEIVE_COUNT}"]
    if count is None:
        return [f"{where}: rule 2: RedrivePolicy has no maxReceiveCount"]
    return []


# --- rules 3-5: least privilege --------------------------------------------------------

# Pseudo parameters that only place an ARN in this partition/region/account; they name nothing.
SCAFFOLDING = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}
# What the root template hands every capability about the bus, and what they are good for.
PLATFORM_BUS_PARAMETERS = {"EventBusArn", "EventBusName"}
BUS_ACTIONS = {"events:putevents", "events:describeeventbus"}
# A GetAtt of one of these is some other stack's output, not a resource of this template.
NESTED_STACK_TYPES = {"AWS::Serverless::Application", "AWS::CloudFormation::Stack"}
POLICY_HOLDER_TYPES = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}
IAM_DOCUMENT_TYPES = {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}
# Pull event sources: the property naming what the function consumes (and SAM lets it read).
PULL_EVENT_SOURCES = {
    "SQS": "Queue",
    "DynamoDB": "Stream",
    "Kinesis": "Stream",
    "MQ": "Broker",
    "MSK": "Stream",
    "DocumentDB": "Cluster",
}
ARN_SEPARATORS = ("/", ":")
IAM_WILDCARDS = ("*", "?")
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")

FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
ROLE_TYPE = "AWS::IAM::Role"
LOG_GROUP_TYPE = "AWS::Logs::LogGroup"
LAMBDA_SERVICE = "lambda.amazonaws.com"
# X-Ray defines no resource types for these, so "*" is the only Resource that grants them.
XRAY_WRITE_ACTIONS = {"xray:puttracesegments", "xray:puttelemetryrecords"}
# All Lambda does in a log group that exists: create its streams and write to them.
LOG_WRITE_ACTIONS = {"logs:createlogstream", "logs:putlogevents"}
MANAGE_CONNECTIONS_ACTIONS = {"execute-api:manageconnections"}
API_TYPE = "AWS::ApiGatewayV2::Api"
API_STAGE_TYPE = "AWS::ApiGatewayV2::Stage"

NOT_OWNED = "reaches a resource this template does not own"
UNSCOPED = "grants what cannot be scoped to this template's resources"
WILDCARD = "wildcard resource"
NO_ROLE = (
    "no Role: SAM generates the function's role with AWS managed policies on Resource \"*\" "
    "(AWSLambdaBasicExecutionRole; X-Ray write access for Tracing: Active; "
    "AWSLambdaSQSQueueExecutionRole / AWSLambdaDynamoDBExecutionRole for an SQS / DynamoDB "
    "event); declare its AWS::IAM::Role and set Role: !GetAtt <Role>.Arn"
)
NOT_OWN_ROLE = "Role is not !GetAtt <Role>.Arn of an AWS::IAM::Role declared in this template"
SHARED_ROLE = "the role of more than one function, so each has the others' rights"
IGNORED_POLICIES = (
    "ignored: SAM applies Policies only to a role it generates, and the function names its "
    "Role; put these statements into that role"
)
MANAGED_ON_ROLE = (
    "managed policy on a role (AWS's grant on Resource \"*\", and a managed policy can be "
    "attached anywhere): write the statements inline"
)
TRUSTS_OTHERS = "trusts a principal other than the Lambda service"
LOGS_BEYOND_WRITING = (
    "logs actions beyond logs:CreateLogStream and logs:PutLogEvents (the function's log group "
    "is declared, Lambda only writes into it)"
)
LOGS_WITHOUT_GROUP = (
    "grants logs actions, but the function names no log group of this template "
    "(LoggingConfig.LogGroup: !Ref <AWS::Logs::LogGroup>)"
)
LOGS_ELSEWHERE = "logs actions outside the function's own log group (its LoggingConfig.LogGroup)"
SHARED_LOG_GROUP = (
    "the LoggingConfig.LogGroup of more than one function, so each writes into the others' group"
)

# A piece of a resource as it will be rendered: ("text", s), ("ref", name, attribute or None)
# for a Ref/GetAtt/${...}, or ("opaque", shown) for an intrinsic that cannot be followed.
Piece = tuple


@functools.cache
def sam_policy_templates() -> PolicyTemplatesProcessor:
    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


def is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = str(next(iter(value)))
    return key == "Ref" or key.startswith("Fn::")


def no_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get("Ref") == "AWS::NoValue" and len(value) == 1


def branches(value: Any) -> Iterable[Any]:
    """The values a Fn::If can take (each branch, recursively); nothing for AWS::NoValue."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        inner = value["Fn::If"]
        if isinstance(inner, list) and len(inner) == 3:
            yield from branches(inner[1])
            yield from branches(inner[2])
            return
    if not no_value(value):
        yield value


def leaves(value: Any) -> Iterable[Any]:
    """The single values of a list-or-scalar property, through Fn::If at any list level."""
    for branch in branches(value):
        if isinstance(branch, list):
            for item in branch:
                yield from leaves(item)
        else:
            yield branch


def strings(value: Any) -> list[str]:
    """Action/NotAction as strings, through Fn::If."""
    return [v if isinstance(v, str) else show_value(v) for v in leaves(value)]


def matches_action(action: str, patterns: list[str]) -> list[str]:
    """The patterns (IAM wildcards * and ?, case-insensitive) that match action."""
    return [p for p in patterns if fnmatch.fnmatchcase(action, p.lower())]


def show_value(value: Any) -> str:
    return json.dumps(value, default=str)


def normalised(pieces: list[Piece]) -> list[Piece]:
    merged: list[Piece] = []
    for piece in pieces:
        if piece[0] == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + piece[1])
        elif piece != ("text", ""):
            merged.append(piece)
    return merged


def combined(parts: list[list[list[Piece] | None]], delimiter: str = "") -> list[list[Piece]]:
    """Every concatenation of one rendering per part (the cartesian product of Fn::If branches)."""
    results: list[tuple[list[Piece], int]] = [([], 0)]  # (pieces so far, items joined so far)
    for options in parts:
        extended = []
        for prefix, joined in results:
            for option in options:
                if option is None:  # AWS::NoValue in a Join is dropped
                    extended.append((prefix, joined))
                else:
                    separator = [("text", delimiter)] if joined else []
                    extended.append((prefix + separator + option, joined + 1))
        results = extended
    return [normalised(pieces) for pieces, _ in results]


def renderings(value: Any) -> list[list[Piece] | None]:
    """Every way a (decoded) value can come out, one per combination of Fn::If branches, as
    pieces; None stands for AWS::NoValue."""
    if isinstance(value, str):
        return [normalised([("text", value)])]
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "Ref" and isinstance(inner, str):
            return [None] if inner == "AWS::NoValue" else [[("ref", inner, None)]]
        if key == "Fn::GetAtt":
            if isinstance(inner, list) and len(inner) >= 2 and all(isinstance(p, str) for p in inner):
                return [[("ref", inner[0], ".".join(inner[1:]))]]
            if isinstance(inner, str) and "." in inner:
                name, attribute = inner.split(".", 1)
                return [[("ref", name, attribute)]]
        if key == "Fn::If" and isinstance(inner, list) and len(inner) == 3:
            return renderings(inner[1]) + renderings(inner[2])
        if key == "Fn::Sub":
            return sub_renderings(inner)
        if key == "Fn::Join" and isinstance(inner, list) and len(inner) == 2:
            delimiter, items = inner
            if isinstance(delimiter, str) and isinstance(items, list):
                return combined([renderings(item) for item in items], delimiter)
    return [[("opaque", show_value(value))]]


def sub_renderings(inner: Any) -> list[list[Piece] | None]:
    text, variables = inner if isinstance(inner, list) and len(inner) == 2 else (inner, {})
    if not isinstance(text, str) or not isinstance(variables, dict):
        return [[("opaque", show_value({"Fn::Sub": inner}))]]
    parts: list[list[list[Piece] | None]] = []
    position = 0
    for match in SUB_VARIABLE.finditer(text):
        parts.append([[("text", text[position : match.start()])]])
        name = match.group(1).strip()
        if name.startswith("!"):  # ${!Literal} is the text ${Literal}
            parts.append([[("text", "${" + name[1:] + "}")]])
        elif name in variables:
            options = renderings(variables[name])
            parts.append([o if o is not None else [("opaque", "AWS::NoValue")] for o in options])
        elif "." in name:
            parts.append([[("ref", *name.split(".", 1))]])
        else:
            parts.append([[("ref", name, None)]])
        position = match.end()
    parts.append([[("text", text[position:])]])
    return combined(parts)


def shown(pieces: list[Piece]) -> str:
    if len(pieces) == 1 and pieces[0][0] in ("text", "opaque"):
        return pieces[0][1]
    if len(pieces) == 1 and pieces[0][0] == "ref":
        _, name, attribute = pieces[0]
        return f"!Ref {name}" if attribute is None else f"!GetAtt {name}.{attribute}"
    out = []
    for piece in pieces:
        if piece[0] == "text":
            out.append(piece[1])
        elif piece[0] == "ref":
            out.append("${" + piece[1] + (f".{piece[2]}" if piece[2] else "") + "}")
        else:
            out.append("${" + piece[1] + "}")
    return "!Sub " + "".join(out)


@dataclasses.dataclass(frozen=True)
class Served:
    """Whose rights a policy document is: the functions whose role it belongs to, and the log
    groups those functions name in LoggingConfig (rule 7)."""

    functions: tuple[str, ...]
    log_groups: frozenset[str]


def grants_service(patterns: list[str], service: str) -> bool:
    """Whether an Action pattern (IAM wildcards, case-insensitive) matches some action of service."""
    return any(fnmatch.fnmatchcase(service, p.lower().split(":", 1)[0]) for p in patterns)


def excludes_service(not_actions: list[str], service: str) -> bool:
    """Whether a NotAction pattern matches every action of service (service:* or broader)."""
    for pattern in not_actions:
        head, _, tail = pattern.lower().partition(":")
        if fnmatch.fnmatchcase(service, head) and (tail == "*" or (not tail and head == "*")):
            return True
    return False


class LeastPrivilege:
    """Rules 3-7 over one template; findings are grouped per place and rule."""

    def __init__(self, template: dict, capability: str | None) -> None:
        self.resources = template.get("Resources") or {}
        self.parameters = template.get("Parameters") or {}
        globals_function = (template.get("Globals") or {}).get("Function")
        self.globals_function = globals_function if isinstance(globals_function, dict) else {}
        self.capability = capability
        self.findings: dict[tuple[str, int, str], list[str]] = {}
        # Rule 6's view of every function: the role it names (None: SAM generates one) and the
        # log group it names (rule 7).
        self.names_role: dict[str, bool] = {}
        self.role_of: dict[str, str | None] = {}
        self.log_group_of: dict[str, str | None] = {}
        for logical_id, resource in self.resources.items():
            if isinstance(resource, dict) and resource.get("Type") in FUNCTION_TYPES:
                props = resource.get("Properties") or {}
                props = props if isinstance(props, dict) else {}
                role = self.effective(resource, props, "Role")
                self.names_role[logical_id] = role is not None
                self.role_of[logical_id] = self.role_id(role) if role is not None else None
                self.log_group_of[logical_id] = self.log_group_id(resource, props)

    def report(self, where: str, rule: int, message: str, detail: str | None = None) -> None:
        details = self.findings.setdefault((where, rule, message), [])
        if detail is not None and detail not in details:
            details.append(detail)

    def lines(self) -> list[str]:
        return [
            f"{where}: rule {rule}: {message}" + (f": {', '.join(details)}" if details else "")
            for (where, rule, message), details in self.findings.items()
        ]

    def type_of(self, logical_id: str) -> Any:
        resource = self.resources.get(logical_id)
        return resource.get("Type") if isinstance(resource, dict) else None

    def kind(self, name: str) -> str:
        if name in SCAFFOLDING:
            return "scaffolding"
        if isinstance(self.resources.get(name), dict):
            return "foreign" if self.type_of(name) in NESTED_STACK_TYPES else "own"
        if name in PLATFORM_BUS_PARAMETERS and name in self.parameters:
            return "bus"
        return "foreign"

    # --- which function a grant belongs to -------------------------------------------------

    def effective(self, resource: dict, props: dict, key: str) -> Any:
        """A function property as SAM applies it: the function's own, else Globals.Function's."""
        if key in props:
            return props[key]
        if resource.get("Type") == "AWS::Serverless::Function":
            return self.globals_function.get(key)
        return None

    def role_id(self, role: Any) -> str | None:
        """The AWS::IAM::Role declared here that `!GetAtt <Role>.Arn` names, else None."""
        pieces = renderings(role)
        if len(pieces) == 1 and pieces[0] is not None and len(pieces[0]) == 1:
            piece = pieces[0][0]
            if piece[0] == "ref" and piece[2] == "Arn" and self.type_of(piece[1]) == ROLE_TYPE:
                return piece[1]
        return None

    def log_group_id(self, resource: dict, props: dict) -> str | None:
        """The AWS::Logs::LogGroup declared here that the function's LoggingConfig.LogGroup
        names by Ref (LoggingConfig merged over Globals.Function's, as SAM merges maps)."""
        config: dict = {}
        layers = [props.get("LoggingConfig")]
        if resource.get("Type") == "AWS::Serverless::Function":
            layers.insert(0, self.globals_function.get("LoggingConfig"))
        for layer in layers:
            if isinstance(layer, dict):
                config.update(layer)
        group = config.get("LogGroup")
        if isinstance(group, dict) and list(group) == ["Ref"]:
            if self.type_of(str(group["Ref"])) == LOG_GROUP_TYPE:
                return str(group["Ref"])
        return None

    def served_by(self, functions: Iterable[str]) -> Served | None:
        names = tuple(dict.fromkeys(functions))
        if not names:
            return None
        groups = frozenset(g for f in names if (g := self.log_group_of.get(f)) is not None)
        return Served(names, groups)

    def served_by_roles(self, roles: Iterable[str]) -> Served | None:
        wanted = set(roles)
        return self.served_by(f for f, role in self.role_of.items() if role in wanted)

    # --- rules 3-5 and 7 on statements ---------------------------------------------------------

    def owned(self, pieces: list[Piece], bus_allowed: bool) -> bool:
        anchors = 0
        for k, piece in enumerate(pieces):
            if piece[0] == "opaque":
                return False
            if piece[0] != "ref":
                continue
            kind = self.kind(piece[1])
            if kind == "scaffolding":
                continue
            if kind == "foreign" or (kind == "bus" and not bus_allowed):
                return False
            before = pieces[k - 1] if k > 0 else None
            after = pieces[k + 1] if k + 1 < len(pieces) else None
            if before is not None and not (before[0] == "text" and before[1].endswith(ARN_SEPARATORS)):
                return False
            if after is not None and not (after[0] == "text" and after[1].startswith(ARN_SEPARATORS)):
                return False
            anchors += 1
        return anchors > 0

    def log_streams_of(self, pieces: list[Piece]) -> str | None:
        """G if pieces are exactly the streams of log group G declared here:
        arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${G}:log-stream:*"""
        shape = [
            ("text", "arn:"), ("ref", "AWS::Partition", None), ("text", ":logs:"),
            ("ref", "AWS::Region", None), ("text", ":"), ("ref", "AWS::AccountId", None),
            ("text", ":log-group:"), None, ("text", ":log-stream:*"),
        ]
        if len(pieces) != len(shape):
            return None
        if any(want is not None and got != want for got, want in zip(pieces, shape)):
            return None
        group = pieces[7]
        if group[0] == "ref" and group[2] is None and self.type_of(group[1]) == LOG_GROUP_TYPE:
            return group[1]
        return None

    def is_own_connections(self, pieces: list[Piece]) -> bool:
        """Whether pieces are exactly the connections of a WebSocket API stage declared here:
        arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/${Stage}/POST/@connections/*"""
        shape = [
            ("text", "arn:"), ("ref", "AWS::Partition", None), ("text", ":execute-api:"),
            ("ref", "AWS::Region", None), ("text", ":"), ("ref", "AWS::AccountId", None),
            ("text", ":"), None, ("text", "/"), None, ("text", "/POST/@connections/*"),
        ]
        if len(pieces) != len(shape):
            return False
        if any(want is not None and got != want for got, want in zip(pieces, shape)):
            return False
        api, stage = pieces[7], pieces[9]
        return (api[0] == "ref" and api[2] is None and self.type_of(api[1]) == API_TYPE
                and stage[0] == "ref" and stage[2] is None and self.type_of(stage[1]) == API_STAGE_TYPE)

    def log_group_named(self, pieces: list[Piece]) -> str | None:
        """G if pieces are log group G declared here, or its streams: the streams' form above,
        `!GetAtt G.Arn`, or its ARN arn:${AWS::Partition}:...:log-group:${G}."""
        as_streams = pieces + [("text", ":log-stream:*")] if pieces and pieces[-1][0] == "ref" else pieces
        return self.log_streams_of(as_streams) or self.log_group_arn_of(pieces)

    def log_group_arn_of(self, pieces: list[Piece]) -> str | None:
        """G if pieces are `!GetAtt G.Arn` of a log group declared here (which ends in ":*")."""
        if len(pieces) == 1 and pieces[0][0] == "ref" and pieces[0][2] == "Arn":
            if self.type_of(pieces[0][1]) == LOG_GROUP_TYPE:
                return pieces[0][1]
        return None

    def judge_resources(
        self,
        where: str,
        value: Any,
        bus_allowed: bool,
        label: str = "",
        xray_only: bool = False,
        log_writes_only: bool = False,
        manage_connections_only: bool = False,
    ) -> None:
        """Rules 3 and 4 on a Resource list (or on a target SAM grants access to)."""
        for leaf in leaves(value):
            if leaf is None:  # no Resource at all
                continue
            for pieces in renderings(leaf):
                if pieces is None:
                    continue
                if xray_only and pieces == [("text", "*")]:
                    continue  # rule 4's X-Ray exception
                detail = f"{label}{shown(pieces)}"
                if not self.owned(pieces, bus_allowed):
                    if not bus_allowed and any(p[0] == "ref" and self.kind(p[1]) == "bus" for p in pieces):
                        detail += " (the bus parameters serve events:PutEvents/DescribeEventBus only)"
                    self.report(where, 3, NOT_OWNED, detail)
                if self.log_group_arn_of(pieces) is not None:
                    self.report(where, 4, WILDCARD, f"{detail} (a log group's Arn ends in \":*\"; name its "
                                "streams: arn:...:log-group:${Group}:log-stream:*)")
                elif any(p[0] == "text" and any(w in p[1] for w in IAM_WILDCARDS) for p in pieces):
                    if log_writes_only and self.log_streams_of(pieces) is not None:
                        continue
                    if manage_connections_only and self.is_own_connections(pieces):
                        continue
                    self.report(where, 4, WILDCARD, detail)

    def publish_finding(self, where: str, why: str) -> None:
        if self.capability is None:
            self.report(where, 5, "grants events:PutEvents in a template that is no capability's "
                        "(not functions/<capability>/template.yaml), so there is no source it may use", why)
        else:
            self.report(where, 5, "grants events:PutEvents without Condition StringEquals "
                        f"events:source: shop.{self.capability}", why)

    def publishes_as_itself(self, statement: dict) -> bool:
        condition = statement.get("Condition")
        equals = condition.get("StringEquals") if isinstance(condition, dict) else None
        if not isinstance(equals, dict) or self.capability is None:
            return False
        values = [v for k, v in equals.items() if isinstance(k, str) and k.lower() == "events:source"]
        if len(values) != 1:
            return False
        value = values[0]
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        return value == f"shop.{self.capability}"

    def judge_logs(
        self, where: str, stmt: dict, actions: list[str], not_actions: list[str], served: Served
    ) -> None:
        """Rule 7 on one Allow statement of a function's policy."""
        if "NotAction" in stmt:
            if excludes_service(not_actions, "logs"):
                return
            beyond = ["NotAction " + ", ".join(not_actions)]
        else:
            if not grants_service(actions, "logs"):
                return
            beyond = [
                a for a in actions if grants_service([a], "logs") and a.lower() not in LOG_WRITE_ACTIONS
            ]
        for action in beyond:
            self.report(where, 7, LOGS_BEYOND_WRITING, action)
        if not served.log_groups:
            self.report(where, 7, LOGS_WITHOUT_GROUP, ", ".join(served.functions))
            return
        for leaf in leaves(stmt.get("Resource")):
            for pieces in renderings(leaf) if leaf is not None else []:
                if pieces is None:
                    continue
                if self.log_group_named(pieces) not in served.log_groups:
                    self.report(where, 7, LOGS_ELSEWHERE, shown(pieces))

    def judge_statement(
        self, where: str, statement: Any, template_name: str | None = None, served: Served | None = None
    ) -> None:
        for stmt in branches(statement):
            if not isinstance(stmt, dict) or stmt.get("Effect") == "Deny":
                continue
            actions = strings(stmt.get("Action"))
            not_actions = strings(stmt.get("NotAction"))
            lowered = {a.lower() for a in actions}
            plain = bool(actions) and "NotAction" not in stmt
            bus_allowed = plain and lowered <= BUS_ACTIONS
            if "NotResource" in stmt:
                self.report(where, 4, WILDCARD, "NotResource (allows every resource but those it names)")
            self.judge_resources(
                where,
                stmt.get("Resource"),
                bus_allowed,
                xray_only=plain and lowered <= XRAY_WRITE_ACTIONS,
                log_writes_only=plain and lowered <= LOG_WRITE_ACTIONS,
                manage_connections_only=plain and lowered <= MANAGE_CONNECTIONS_ACTIONS,
            )
            matches = matches_action("events:putevents", actions)
            if "NotAction" in stmt and not matches_action("events:putevents", not_actions):
                matches.append("NotAction " + ", ".join(not_actions))
            if matches and not self.publishes_as_itself(stmt):
                why = f"Action {', '.join(matches)}"
                if template_name:
                    why += (
                        f" (the SAM policy template {template_name} cannot carry the condition; "
                        "write the statement inline)"
                    )
                self.publish_finding(where, why)
            if served is not None:
                self.judge_logs(where, stmt, actions, not_actions, served)

    def judge_document(
        self, where: str, document: Any, template_name: str | None = None, served: Served | None = None
    ) -> None:
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError:
                self.report(where, 3, UNSCOPED, "a policy document that is not valid JSON")
                return
        for doc in branches(document):
            statements = doc.get("Statement") if isinstance(doc, dict) else None
            if template_name is not None:  # one place: the policy template entry
                for statement in leaves(statements):
                    self.judge_statement(where, statement, template_name, served)
                continue
            for j, statement in enumerate(statements if isinstance(statements, list) else [statements]):
                if statement is None:
                    continue
                sid = statement.get("Sid") if isinstance(statement, dict) else None
                label = f"{where}.Statement[{j}]" + (f" ({sid})" if isinstance(sid, str) else "")
                self.judge_statement(f"{label}{line_of(statement)}", statement, served=served)

    def own_managed_policy(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and list(value) == ["Ref"]
            and self.type_of(str(value["Ref"])) == "AWS::IAM::ManagedPolicy"
        )

    def judge_policies(self, where: str, policies: Any, served: Served | None = None) -> None:
        """A SAM Policies property: a managed policy name, a document, or a list of those
        and of SAM policy templates."""
        listed = isinstance(policies, list)
        for i, item in enumerate(policies if listed else [policies]):
            place = f"{where}[{i}]" if listed else where
            for entry in branches(item):
                at = f"{place}{line_of(entry) or line_of(item)}"
                if isinstance(entry, str):
                    self.report(at, 3, UNSCOPED, f"managed policy {entry}")
                elif isinstance(entry, dict) and "Statement" in entry:
                    self.judge_document(place, entry, served=served)
                elif is_intrinsic(entry):
                    if not self.own_managed_policy(entry):
                        self.report(at, 3, UNSCOPED, f"managed policy {show_value(entry)}")
                elif isinstance(entry, dict) and len(entry) == 1:
                    self.judge_policy_template(place, entry, served)
                else:
                    what = f"neither a policy document nor a SAM policy template: {show_value(entry)}"
                    self.report(at, 3, UNSCOPED, what)

    def judge_policy_template(self, place: str, entry: dict, served: Served | None) -> None:
        name, values = next(iter(entry.items()))
        at = f"{place} ({name}){line_of(entry)}"
        processor = sam_policy_templates()
        if not processor.has(name):
            self.report(at, 3, UNSCOPED, "not a SAM policy template this SAM version knows")
            return
        try:
            document = processor.convert(name, copy.deepcopy(values))
        except (InsufficientParameterValues, InvalidParameterValues) as error:
            self.report(at, 3, UNSCOPED, f"cannot be expanded: {error}")
            return
        self.judge_document(at, document, template_name=name, served=served)

    def judge_role(self, where: str, role: Any) -> None:
        """A state machine's Role (rule 3); functions' roles are rule 6."""
        for leaf in leaves(role):
            for pieces in renderings(leaf):
                if pieces is None:
                    continue
                role_id = pieces[0][1] if len(pieces) == 1 and pieces[0][0] == "ref" else None
                if role_id is not None and self.type_of(role_id) == ROLE_TYPE:
                    continue  # its policies are judged where it is declared
                what = f"execution role {shown(pieces)}, not declared in this template"
                self.report(where, 3, UNSCOPED, what)

    def judge_destinations(self, where: str, config: Any) -> None:
        """DestinationConfig-like {OnSuccess, OnFailure: {Type, Destination}}: the function
        (Lambda, with its role) sends there."""
        if not isinstance(config, dict):
            return
        for outcome in ("OnSuccess", "OnFailure"):
            for target in branches(config.get(outcome)):
                if not isinstance(target, dict) or "Destination" not in target:
                    continue
                is_bus = target.get("Type") == "EventBridge"
                self.judge_resources(where, target["Destination"], is_bus, f"{outcome} ")
                if is_bus:
                    self.publish_finding(where, f"{outcome} destination of Type EventBridge")

    def judge_reach(self, logical_id: str, props: dict) -> None:
        """What a function or state machine reaches besides its policies: event sources,
        destinations, dead-letter queue."""
        events = props.get("Events")
        for event_id, event in (events.items() if isinstance(events, dict) else []):
            if not isinstance(event, dict):
                continue
            kind = event.get("Type")
            event_props = event.get("Properties") or {}
            where = f"{logical_id}.Events.{event_id} ({kind}){line_of(event)}"
            source = PULL_EVENT_SOURCES.get(kind)
            if source and isinstance(event_props, dict):
                if source in event_props:
                    self.judge_resources(where, event_props[source], False, f"{source} ")
                self.judge_destinations(where, event_props.get("DestinationConfig"))
        dead_letter = props.get("DeadLetterQueue")
        if isinstance(dead_letter, dict) and "TargetArn" in dead_letter:
            where = f"{logical_id}.DeadLetterQueue{line_of(dead_letter)}"
            self.judge_resources(where, dead_letter["TargetArn"], False)
        invoke_config = props.get("EventInvokeConfig")
        if isinstance(invoke_config, dict):
            where = f"{logical_id}.EventInvokeConfig{line_of(invoke_config)}"
            self.judge_destinations(where, invoke_config.get("DestinationConfig"))

    def judge_connector(self, where: str, props: Any) -> None:
        if not isinstance(props, dict):
            return
        permissions = {p for p in leaves(props.get("Permissions")) if isinstance(p, str)}
        for destination in leaves(props.get("Destination")):
            if not isinstance(destination, dict):
                continue
            types = (destination.get("Type"), self.type_of(str(destination.get("Id"))))
            is_bus = "AWS::Events::EventBus" in types
            if "Id" in destination:
                if self.kind(str(destination["Id"])) != "own":
                    self.report(where, 3, NOT_OWNED, f"Destination Id {destination['Id']}")
            elif "Arn" in destination:
                self.judge_resources(where, destination["Arn"], is_bus, "Destination ")
            if is_bus and "Write" in permissions:
                self.publish_finding(where, "Write to an AWS::Events::EventBus")

    # --- rule 6: every function its own role --------------------------------------------------

    def judge_function(self, logical_id: str, resource: dict, props: dict) -> None:
        where = f"{logical_id}{line_of(resource)}"
        role = self.effective(resource, props, "Role")
        if not self.names_role[logical_id]:
            self.report(where, 6, NO_ROLE)
            # SAM applies the function's Policies to the role it generates: they take effect.
            if "Policies" in props:
                self.judge_policies(f"{logical_id}.Policies", props["Policies"], self.served_by([logical_id]))
        else:
            at = f"{logical_id}.Role{line_of(props['Role'])}" if "Role" in props else "Globals.Function.Role"
            if self.role_of[logical_id] is None:
                self.report(at, 6, NOT_OWN_ROLE, show_value(role) if not isinstance(role, str) else role)
            if "Policies" in props:
                self.report(f"{logical_id}.Policies{line_of(props['Policies'])}", 6, IGNORED_POLICIES)
        if resource.get("Type") == "AWS::Serverless::Function":
            self.judge_reach(logical_id, props)

    def judge_globals(self) -> None:
        policies = self.globals_function.get("Policies")
        if policies is not None:
            serverless = [f for f in self.names_role if self.type_of(f) == "AWS::Serverless::Function"]
            # SAM adds Globals' Policies to every function's, with the same effect as its own.
            with_role = [f for f in serverless if self.names_role[f]]
            if with_role:
                self.report("Globals.Function.Policies", 6, IGNORED_POLICIES, ", ".join(with_role))
            without_role = [f for f in serverless if not self.names_role[f]]
            if without_role:
                self.judge_policies("Globals.Function.Policies", policies, self.served_by(without_role))
        self.judge_reach("Globals.Function", self.globals_function)

    def judge_trust(self, where: str, document: Any) -> None:
        for doc in branches(document):
            statements = doc.get("Statement") if isinstance(doc, dict) else None
            for j, statement in enumerate(statements if isinstance(statements, list) else [statements]):
                for stmt in branches(statement):
                    if not isinstance(stmt, dict) or stmt.get("Effect") == "Deny":
                        continue
                    sid = stmt.get("Sid")
                    place = f"{where}.Statement[{j}]" + (f" ({sid})" if isinstance(sid, str) else "")
                    place += line_of(stmt)
                    if "NotPrincipal" in stmt:
                        what = f"NotPrincipal {show_value(stmt['NotPrincipal'])}"
                        self.report(place, 6, TRUSTS_OTHERS, what)
                    if "Principal" in stmt and not self.only_lambda(stmt["Principal"]):
                        self.report(place, 6, TRUSTS_OTHERS, f"Principal {show_value(stmt['Principal'])}")

    @staticmethod
    def only_lambda(principal: Any) -> bool:
        """Principal exactly {Service: lambda.amazonaws.com} (or a list of that one)."""
        if not (isinstance(principal, dict) and list(principal) == ["Service"]):
            return False
        return list(leaves(principal["Service"])) == [LAMBDA_SERVICE]

    def judge_role_resource(self, logical_id: str, resource: dict, props: dict) -> None:
        users = [f for f, role in self.role_of.items() if role == logical_id]
        if len(users) > 1:
            self.report(f"{logical_id}{line_of(resource)}", 6, SHARED_ROLE, ", ".join(users))
        self.judge_trust(f"{logical_id}.AssumeRolePolicyDocument", props.get("AssumeRolePolicyDocument"))
        managed = props.get("ManagedPolicyArns")
        for i, arn in enumerate(leaves(managed) if managed is not None else []):
            if arn is None:
                continue
            shown_arn = arn if isinstance(arn, str) else show_value(arn)
            self.report(f"{logical_id}.ManagedPolicyArns[{i}]{line_of(arn)}", 6, MANAGED_ON_ROLE, shown_arn)
        served = self.served_by(users)
        for i, policy in enumerate(leaves(props.get("Policies"))):
            if isinstance(policy, dict):
                where = f"{logical_id}.Policies[{i}]"
                self.judge_document(where, policy.get("PolicyDocument"), served=served)

    def attached_roles(self, props: dict) -> list[str]:
        """The roles declared here that an AWS::IAM::Policy / ::ManagedPolicy (Roles) or
        ::RolePolicy (RoleName) is attached to."""
        named = list(leaves(props.get("Roles"))) + list(leaves(props.get("RoleName")))
        return [str(r["Ref"]) for r in named if isinstance(r, dict) and list(r) == ["Ref"]]

    def judge_log_groups(self) -> None:
        writers: dict[str, list[str]] = {}
        for function, group in self.log_group_of.items():
            if group is not None:
                writers.setdefault(group, []).append(function)
        for group, functions in writers.items():
            if len(functions) > 1:
                where = f"{group}{line_of(self.resources[group])}"
                self.report(where, 7, SHARED_LOG_GROUP, ", ".join(functions))

    def run(self) -> list[str]:
        self.judge_globals()
        self.judge_log_groups()
        for logical_id, resource in self.resources.items():
            if not isinstance(resource, dict):
                continue
            kind = resource.get("Type")
            props = resource.get("Properties") or {}
            if not isinstance(props, dict):
                continue
            if kind in FUNCTION_TYPES:
                self.judge_function(logical_id, resource, props)
            elif kind == "AWS::Serverless::StateMachine":
                if "Policies" in props:
                    self.judge_policies(f"{logical_id}.Policies", props["Policies"])
                if "Role" in props:
                    self.judge_role(f"{logical_id}.Role{line_of(props['Role'])}", props["Role"])
                self.judge_reach(logical_id, props)
            elif kind == ROLE_TYPE:
                self.judge_role_resource(logical_id, resource, props)
            elif kind in IAM_DOCUMENT_TYPES:
                served = self.served_by_roles(self.attached_roles(props))
                where = f"{logical_id}.PolicyDocument"
                self.judge_document(where, props.get("PolicyDocument"), served=served)
            elif kind == "AWS::Serverless::Connector":
                self.judge_connector(f"{logical_id}{line_of(resource)}", props)
            elif kind == "AWS::Lambda::EventSourceMapping":
                where = f"{logical_id}{line_of(resource)}"
                if "EventSourceArn" in props:
                    self.judge_resources(where, props["EventSourceArn"], False, "EventSourceArn ")
                self.judge_destinations(where, props.get("DestinationConfig"))
            connectors = resource.get("Connectors")
            for name, connector in (connectors.items() if isinstance(connectors, dict) else []):
                if isinstance(connector, dict):
                    where = f"{logical_id}.Connectors.{name}{line_of(connector)}"
                    self.judge_connector(where, connector.get("Properties"))
        return self.lines()


# --- rules 9-10: what prod keeps ---------------------------------------------------------

STATEFUL_TYPES = {"AWS::DynamoDB::Table", "AWS::Cognito::UserPool"}
SCRATCH_PREFIX = "Sandbox"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def prod_conditions(template: dict) -> set[str]:
    """Names of the conditions that are exactly Fn::Equals [Ref Stage, prod]."""
    found = set()
    for name, condition in (template.get("Conditions") or {}).items():
        operands = condition.get("Fn::Equals") if isinstance(condition, dict) else None
        if isinstance(operands, list) and len(operands) == 2:
            values = [o if isinstance(o, str) else ("Ref Stage" if o == {"Ref": "Stage"} else None) for o in operands]
            if sorted(v for v in values if v is not None) == ["Ref Stage", "prod"]:
                found.add(name)
    return found


def in_prod(value: Any, wanted: Any, prod: set[str]) -> bool:
    """Whether value is `wanted`, or Fn::If whose condition is prod and whose prod branch is."""
    if value == wanted:
        return True
    branches = value.get("Fn::If") if isinstance(value, dict) else None
    return (
        isinstance(branches, list)
        and len(branches) == 3
        and branches[0] in prod
        and branches[1] == wanted
    )


def check_retention(template: dict) -> list[str]:
    findings: list[str] = []
    resources = template.get("Resources") or {}
    prod = prod_conditions(template)
    intrinsic_policy = False
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in STATEFUL_TYPES:
            continue
        where = f"{logical_id}{line_of(resource)}"
        if logical_id.startswith(SCRATCH_PREFIX):
            if "Condition" not in resource:
                findings.append(
                    f"{where}: rule 9: named as a test double's scratch table ({SCRATCH_PREFIX}*) but "
                    "unconditional: give it the Condition under which the double is deployed, or keep its data"
                )
            continue
        props = resource.get("Properties") or {}
        missing = []
        if resource.get("UpdateReplacePolicy") != "Retain":
            missing.append("UpdateReplacePolicy Retain")
        policy = resource.get("DeletionPolicy")
        intrinsic_policy |= isinstance(policy, dict)
        if not in_prod(policy, "Retain", prod):
            missing.append("DeletionPolicy Retain in prod")
        if resource["Type"] == "AWS::DynamoDB::Table":
            if not in_prod(props.get("DeletionProtectionEnabled"), True, prod):
                missing.append("DeletionProtectionEnabled in prod")
            pitr = props.get("PointInTimeRecoverySpecification")
            if not (isinstance(pitr, dict) and pitr.get("PointInTimeRecoveryEnabled") is True):
                missing.append("point-in-time recovery")
        elif not in_prod(props.get("DeletionProtection"), "ACTIVE", prod):
            missing.append("DeletionProtection ACTIVE in prod")
        if missing:
            findings.append(
                f"{where}: rule 9: stateful resource without {', '.join(missing)} "
                "(prod is Fn::Equals [Ref Stage, prod])"
            )
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    if intrinsic_policy and not (
        LANGUAGE_EXTENSIONS in transforms
        and (SAM_TRANSFORM not in transforms or transforms.index(LANGUAGE_EXTENSIONS) < transforms.index(SAM_TRANSFORM))
    ):
        findings.append(
            f"Transform: rule 9: an intrinsic DeletionPolicy needs {LANGUAGE_EXTENSIONS}, "
            f"listed before {SAM_TRANSFORM}"
        )
    parameters = template.get("Parameters") or {}
    if "Stage" in parameters and "PaymentProviderUrl" in parameters:
        guarded = any(
            isinstance(rule, dict)
            and rule.get("RuleCondition") in ({"Fn::Equals": [{"Ref": "Stage"}, "prod"]}, {"Fn::Equals": ["prod", {"Ref": "Stage"}]})
            and "PaymentProviderUrl" in set(referenced_ids(rule.get("Assertions")))
            for rule in (template.get("Rules") or {}).values()
        )
        if not guarded:
            findings.append(
                "Rules: rule 10: nothing stops a prod deploy without PaymentProviderUrl from "
                "charging through the sandbox: add a Rule on Fn::Equals [Ref Stage, prod] asserting it"
            )
    return findings


def capability_of(path: str) -> str | None:
    """functions/<capability>/template.yaml -> <capability>; None for any other template."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    return parts[-2] if len(parts) >= 3 and parts[-3] == "functions" else None


def check_file(path: str) -> list[str]:
    template, matches = decode(path)
    if template is None:
        return [f"cannot read template: {m}" for m in matches] or ["cannot read template"]
    return (
        check_template(template)
        + LeastPrivilege(template, capability_of(path)).run()
        + check_retention(template)
    )


# --- self-test -------------------------------------------------------------------------

# Each seeded defect is a resource (or event) whose name starts with "Bad"; the check must
# report every one of them and nothing else. Written with short-form tags on purpose, so
# the test also proves the tags are decoded.
BROKEN = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      # Its own role, so that the least-privilege rules have nothing to say here.
      Role: !GetAtt ConsumerRole.Arn
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
  ConsumerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
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
  # Rule 8: the dead ends above are watched (GoodQueueDLQ through Dimensions,
  # GoodStreamFailureQueue through metric math, BadUnusedDLQ by the alarms at fault), and
  # BadUnwatchedDLQ, wired up as a dead-letter queue, is not.
  GoodQueueDLQAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt GoodQueueDLQ.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref AlarmTopic]
      OKActions: [!Ref AlarmTopic]
  GoodStreamFailureAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - {Id: total, Expression: SUM(METRICS()), ReturnData: true}
        - Id: failures
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/SQS
              MetricName: ApproximateNumberOfMessagesVisible
              Dimensions: [{Name: QueueName, Value: !GetAtt GoodStreamFailureQueue.QueueName}]
            Period: 60
            Stat: Maximum
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasTopic, [!Ref AlarmTopic], []]
      OKActions: [!Ref AlarmTopic]
  BadAlarmWithoutActions:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt BadUnusedDLQ.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
  BadAlarmNeverClears:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt BadUnusedDLQ.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref AlarmTopic]
      OKActions: []
  BadAlarmMissingDataUnchosen:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt BadUnusedDLQ.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      AlarmActions: [!Ref AlarmTopic]
      OKActions: [!Ref AlarmTopic]
  GoodOtherQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt BadUnwatchedDLQ.Arn, maxReceiveCount: 5}
  BadUnwatchedDLQ:
    Type: AWS::SQS::Queue
  AlarmTopic:
    Type: AWS::SNS::Topic
"""

SEEDED = [
    ("Consumer.Events.BadMisspeltStream", 1),
    ("Consumer.Events.BadMissingQueue", 1),
    ("BadMapping", 1),
    ("BadQueueWithoutRedrive", 2),
    ("BadQueueRetriesTooOften", 2),
    ("BadUnusedDLQ", 2),
    ("BadAlarmWithoutActions", 8),
    ("BadAlarmNeverClears", 8),
    ("BadAlarmMissingDataUnchosen", 8),
    ("BadUnwatchedDLQ", 8),
]

# Rules 3-7, checked as functions/ordering/template.yaml (so its capability is ordering).
# Every Good* grant is one the rules must allow; each Bad* place must be reported exactly
# once for each rule listed in LEAST_PRIVILEGE_SEEDED, and nothing else. Most cases are a
# role, Bad<Case>, with the one statement at fault: rules 3-5 judge roles like any policy.
LEAST_PRIVILEGE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String}
  EventBusName: {Type: String}
  EventBusArn: {Type: String}
  InventoryTableArn: {Type: String}
  InventoryQueueArn: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    CodeUri: .
    Handler: bootstrap
    Runtime: provided.al2023
    LoggingConfig: {LogFormat: JSON}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt QueueDLQ.Arn, maxReceiveCount: 5}
  QueueDLQ:
    Type: AWS::SQS::Queue
  RelayFailureQueue:
    Type: AWS::SQS::Queue
  # Rule 8 wants every dead end watched; the alarm is not what this template tests.
  DeadEndsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - {Id: total, Expression: SUM(METRICS()), ReturnData: true}
        - Id: q1
          ReturnData: false
          MetricStat:
            Metric: {Namespace: AWS/SQS, MetricName: ApproximateNumberOfMessagesVisible, Dimensions: [{Name: QueueName, Value: !GetAtt QueueDLQ.QueueName}]}
            Period: 60
            Stat: Maximum
        - Id: q2
          ReturnData: false
          MetricStat:
            Metric: {Namespace: AWS/SQS, MetricName: ApproximateNumberOfMessagesVisible, Dimensions: [{Name: QueueName, Value: !GetAtt RelayFailureQueue.QueueName}]}
            Period: 60
            Stat: Maximum
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [arn:aws:sns:us-east-1:123456789012:alarms]
      OKActions: [arn:aws:sns:us-east-1:123456789012:alarms]
  Secret:
    Type: AWS::SecretsManager::Secret
  Inventory:
    Type: AWS::Serverless::Application
    Properties:
      Location: ../inventory/template.yaml
  ApiLogs:
    Type: AWS::Logs::LogGroup
  RelayLogs:
    Type: AWS::Logs::LogGroup
  # Named by no function.
  SpareLogs:
    Type: AWS::Logs::LogGroup
  OwnPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt Table.Arn}

  GoodApi:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt GoodApiRole.Arn
      LoggingConfig: {LogGroup: !Ref ApiLogs}
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
  GoodApiRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: &lambda
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
            Condition: {StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}}
          # Deny takes rights away: not judged.
          - {Effect: Deny, Principal: {AWS: "*"}, Action: "sts:*"}
      Policies:
        - PolicyName: api
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiLogs}:log-stream:*
              - {Effect: Allow, Action: [xray:PutTraceSegments, xray:PutTelemetryRecords], Resource: "*"}
              - {Effect: Allow, Action: xray:PutTraceSegments, Resource: ["*"]}
              - Effect: Allow
                Action: [dynamodb:GetItem, dynamodb:Query]
                Resource:
                  - !GetAtt Table.Arn
                  - !Sub ${Table.Arn}/index/gsi1
                  - !Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Table}
                  - !Join ["", [!GetAtt Table.Arn, /index/gsi2]]
                  - !Sub ["${Arn}/index/gsi3", {Arn: !GetAtt Table.Arn}]
                  - !If [IsProd, !Sub "${Table.Arn}/index/gsi4", !Ref AWS::NoValue]
              # Deny takes rights away: not judged.
              - {Effect: Deny, Action: "dynamodb:*", NotResource: "*"}
              - !If
                - IsProd
                - {Effect: Allow, Action: sqs:SendMessage, Resource: !GetAtt Queue.Arn}
                - !Ref AWS::NoValue
              - Effect: Allow
                Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueAttributes]
                Resource: !GetAtt Queue.Arn
              - {Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: !Ref Secret}
  # A policy attached to a function's role is part of what the function may do.
  GoodApiPolicy:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: dead-letters
      Roles: [!Ref GoodApiRole]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: sqs:SendMessage, Resource: !GetAtt QueueDLQ.Arn}
          - Effect: Allow
            Action: logs:PutLogEvents
            Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiLogs}:log-stream:*
  GoodRelay:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt GoodRelayRole.Arn
      LoggingConfig: {LogGroup: !Ref RelayLogs}
      DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt QueueDLQ.Arn}
      EventInvokeConfig:
        DestinationConfig:
          OnFailure: {Type: SQS, Destination: !GetAtt QueueDLQ.Arn}
      Events:
        Outbox:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            FunctionResponseTypes: [ReportBatchItemFailures]
            DestinationConfig:
              OnFailure: {Type: SQS, Destination: !GetAtt RelayFailureQueue.Arn}
  GoodRelayRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: [lambda.amazonaws.com]}, Action: [sts:AssumeRole]}
      Policies:
        - PolicyName: relay
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${RelayLogs}:log-stream:*
              - Effect: Allow
                Action: events:PutEvents
                Resource: !Ref EventBusArn
                Condition: {StringEquals: {events:source: shop.ordering}}
              - Effect: Allow
                Action: [events:PutEvents, events:DescribeEventBus]
                Resource: !Sub arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}
                Condition: {StringEquals: {events:source: [shop.ordering]}}
              - Effect: Allow
                Action: [dynamodb:DescribeStream, dynamodb:GetRecords, dynamodb:GetShardIterator, dynamodb:ListStreams]
                Resource: !GetAtt Table.StreamArn
              - {Effect: Allow, Action: sqs:SendMessage, Resource: [!GetAtt RelayFailureQueue.Arn, !GetAtt QueueDLQ.Arn]}
  GoodConnector:
    Type: AWS::Serverless::Connector
    Properties:
      Source: {Id: GoodApi}
      Destination: {Id: Table}
      Permissions: [Read]

  BadLiteralArn:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource: arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-inventory
  BadForeignParameter:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: !Ref InventoryTableArn}
  BadBuiltName:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource: !Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/shop-${Stage}-inventory
  BadTouchingName:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource: !Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Table}-archive
  BadIfBranch:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource:
                  - !If [IsProd, !GetAtt Table.Arn, "arn:aws:dynamodb:us-east-1:123456789012:table/legacy"]
  BadImportValue:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: !ImportValue shop-inventory-table-arn}
  BadNestedStackOutput:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt Inventory.Outputs.InventoryTableArn}
  BadBusForOtherActions:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [events:PutEvents, events:PutRule]
                Resource: !Ref EventBusArn
                Condition: {StringEquals: {events:source: shop.ordering}}
  BadEventSource:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadEventSourceRole.Arn
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !Ref InventoryQueueArn
            FunctionResponseTypes: [ReportBatchItemFailures]
  BadEventSourceRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadDeadLetterQueue:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadDeadLetterQueueRole.Arn
      DeadLetterQueue: {Type: SQS, TargetArn: !Ref InventoryQueueArn}
  BadDeadLetterQueueRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadConnector:
    Type: AWS::Serverless::Connector
    Properties:
      Source: {Id: GoodApi}
      Destination: {Type: AWS::DynamoDB::Table, Arn: !Ref InventoryTableArn}
      Permissions: [Read]

  BadIndexWildcard:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:Query, Resource: !Sub "${Table.Arn}/index/*"}
  BadSingleCharacterWildcard:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:Query, Resource: !Sub "${Table.Arn}/index/gsi?"}
  BadStar:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: "*"}
  BadNotResource:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, NotResource: !GetAtt Table.Arn}
  BadIamPolicy:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: streams
      Roles: [!Ref GoodRelayRole]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: dynamodb:GetRecords, Resource: !Sub "${Table.Arn}/stream/*"}
  # The X-Ray exception is for exactly its two actions, on exactly "*".
  BadXrayWithOtherAction:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [xray:PutTraceSegments, xray:GetSamplingRules], Resource: "*"}
  BadXrayPattern:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: "xray:Put*", Resource: "*"}
  # The log-stream exception is for exactly the two writing actions.
  BadLogStreamsForAll:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: "logs:*"
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${SpareLogs}:log-stream:*
  # The connections exception: exactly ManageConnections, on this API's stage's connections.
  PushSocketApi:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: pushes, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  PushSocketStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref PushSocketApi, StageName: dev}
  GoodPushRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: execute-api:ManageConnections
                Resource: !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PushSocketApi}/${PushSocketStage}/POST/@connections/*
  BadPushInvokeToo:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [execute-api:ManageConnections, execute-api:Invoke]
                Resource: !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PushSocketApi}/${PushSocketStage}/POST/@connections/*
  BadPushEveryStage:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: execute-api:ManageConnections
                Resource: !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PushSocketApi}/*
  BadLogsGroupArn:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadLogsGroupArnRole.Arn
      LoggingConfig: {LogGroup: !Ref BadLogsGroupArnLogs}
  BadLogsGroupArnLogs:
    Type: AWS::Logs::LogGroup
  # Its own group, but a group's Arn ends in ":*".
  BadLogsGroupArnRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [logs:CreateLogStream, logs:PutLogEvents], Resource: !GetAtt BadLogsGroupArnLogs.Arn}

  BadPublishUnconditioned:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: events:PutEvents, Resource: !Ref EventBusArn}
  BadPublishAsAnother:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: events:PutEvents
                Resource: !Ref EventBusArn
                Condition: {StringEquals: {events:source: shop.inventory}}
  BadPublishStringLike:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: events:PutEvents
                Resource: !Ref EventBusArn
                Condition: {StringLike: {events:source: shop.ordering}}
  BadPublishTwoSources:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: events:PutEvents
                Resource: !Ref EventBusArn
                Condition: {StringEquals: {events:source: [shop.ordering, shop.inventory]}}
  BadEventsStar:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: "events:*", Resource: !Ref EventBusArn}
  BadNotAction:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - {Effect: Allow, NotAction: "dynamodb:*", Resource: !GetAtt Table.Arn}
  BadInvokeConfigBus:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadInvokeConfigBusRole.Arn
      EventInvokeConfig:
        DestinationConfig:
          OnSuccess: {Type: EventBridge, Destination: !Ref EventBusArn}
  BadInvokeConfigBusRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadBusConnector:
    Type: AWS::Serverless::Connector
    Properties:
      Source: {Id: GoodRelay}
      Destination: {Type: AWS::Events::EventBus, Arn: !Ref EventBusArn}
      Permissions: [Write]

  BadNoRole:
    Type: AWS::Serverless::Function
  BadLiteralRole:
    Type: AWS::Serverless::Function
    Properties:
      Role: arn:aws:iam::123456789012:role/shop-shared
  BadRoleOfAnotherStack:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt Inventory.Outputs.InventoryRoleArn
  BadSharedRoleFirst:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadSharedRole.Arn
  BadSharedRoleSecond:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadSharedRole.Arn
  BadSharedRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  # SAM ignores Policies beside a Role: what they say is not judged, since it grants nothing.
  BadPoliciesBesideRole:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadPoliciesBesideRoleRole.Arn
      Policies:
        - Statement:
            - {Effect: Allow, Action: dynamodb:GetItem, Resource: !Ref InventoryTableArn}
  BadPoliciesBesideRoleRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadManagedPolicyArns:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      ManagedPolicyArns:
        - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
        - !Ref OwnPolicy
  BadTrustsEc2:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: [lambda.amazonaws.com, ec2.amazonaws.com]}, Action: sts:AssumeRole}
  BadTrustsAnAccount:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
          - {Effect: Allow, Principal: {AWS: "arn:aws:iam::123456789012:root"}, Action: sts:AssumeRole}
  BadTrustsAllButOne:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, NotPrincipal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}

  BadLogsIntoAnother:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadLogsIntoAnotherRole.Arn
      LoggingConfig: {LogGroup: !Ref BadLogsIntoAnotherLogs}
  BadLogsIntoAnotherLogs:
    Type: AWS::Logs::LogGroup
  # GoodApi's group, not its own.
  BadLogsIntoAnotherRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiLogs}:log-stream:*
  # Through a policy attached to GoodApi's role: GoodRelay's group.
  BadLogsByAttachedPolicy:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: logs
      Roles: [!Ref GoodApiRole]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: logs:PutLogEvents
            Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${RelayLogs}:log-stream:*
  BadLogsCreateGroup:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadLogsCreateGroupRole.Arn
      LoggingConfig: {LogGroup: !Ref BadLogsCreateGroupLogs}
  BadLogsCreateGroupLogs:
    Type: AWS::Logs::LogGroup
  BadLogsCreateGroupRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: logs:CreateLogGroup
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${BadLogsCreateGroupLogs}
  # Names no log group of its own, so no logs grant is its own.
  BadLogsWithoutGroup:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadLogsWithoutGroupRole.Arn
  BadLogsWithoutGroupRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
      Policies:
        - PolicyName: case
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${SpareLogs}:log-stream:*
  BadSharedLogsFirst:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadSharedLogsFirstRole.Arn
      LoggingConfig: {LogGroup: !Ref BadSharedLogs}
  BadSharedLogsFirstRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadSharedLogsSecond:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt BadSharedLogsSecondRole.Arn
      LoggingConfig: {LogGroup: !Ref BadSharedLogs}
  BadSharedLogsSecondRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: *lambda
  BadSharedLogs:
    Type: AWS::Logs::LogGroup
"""

LEAST_PRIVILEGE_SEEDED = [
    ("BadLiteralArn.Policies[0]", 3),
    ("BadForeignParameter.Policies[0]", 3),
    ("BadBuiltName.Policies[0]", 3),
    ("BadTouchingName.Policies[0]", 3),
    ("BadIfBranch.Policies[0]", 3),
    ("BadImportValue.Policies[0]", 3),
    ("BadNestedStackOutput.Policies[0]", 3),
    ("BadBusForOtherActions.Policies[0]", 3),
    ("BadEventSource.Events.Queue", 3),
    ("BadDeadLetterQueue.DeadLetterQueue", 3),
    ("BadConnector", 3),
    ("BadIndexWildcard.Policies[0]", 4),
    ("BadSingleCharacterWildcard.Policies[0]", 4),
    ("BadStar.Policies[0]", 3),
    ("BadStar.Policies[0]", 4),
    ("BadNotResource.Policies[0]", 4),
    ("BadIamPolicy.PolicyDocument", 4),
    ("BadXrayWithOtherAction.Policies[0]", 3),
    ("BadXrayWithOtherAction.Policies[0]", 4),
    ("BadXrayPattern.Policies[0]", 3),
    ("BadXrayPattern.Policies[0]", 4),
    ("BadLogStreamsForAll.Policies[0]", 4),
    ("BadPushInvokeToo.Policies[0]", 4),
    ("BadPushEveryStage.Policies[0]", 4),
    ("BadLogsGroupArnRole.Policies[0]", 4),
    ("BadPublishUnconditioned.Policies[0]", 5),
    ("BadPublishAsAnother.Policies[0]", 5),
    ("BadPublishStringLike.Policies[0]", 5),
    ("BadPublishTwoSources.Policies[0]", 5),
    ("BadEventsStar.Policies[0]", 3),
    ("BadEventsStar.Policies[0]", 5),
    ("BadNotAction.Policies[0]", 5),
    ("BadInvokeConfigBus.EventInvokeConfig", 5),
    ("BadBusConnector", 5),
    ("BadNoRole", 6),
    ("BadLiteralRole.Role", 6),
    ("BadRoleOfAnotherStack.Role", 6),
    ("BadSharedRole", 6),
    ("BadPoliciesBesideRole.Policies", 6),
    ("BadManagedPolicyArns.ManagedPolicyArns[0]", 6),
    ("BadManagedPolicyArns.ManagedPolicyArns[1]", 6),
    ("BadTrustsEc2.AssumeRolePolicyDocument", 6),
    ("BadTrustsAnAccount.AssumeRolePolicyDocument", 6),
    ("BadTrustsAllButOne.AssumeRolePolicyDocument", 6),
    ("BadLogsIntoAnotherRole.Policies[0]", 7),
    ("BadLogsByAttachedPolicy.PolicyDocument", 7),
    ("BadLogsCreateGroupRole.Policies[0]", 7),
    ("BadLogsWithoutGroupRole.Policies[0]", 7),
    ("BadSharedLogs", 7),
]

# Functions on SAM's generated role: each one is a rule 6 finding, and since without a Role
# SAM applies their Policies (managed policy names, SAM policy templates) to that role, what
# those grant is judged by rules 3-5 as well.
SAM_GENERATED_ROLES = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  EventBusName: {Type: String}
Globals:
  Function:
    CodeUri: .
    Handler: bootstrap
    Runtime: provided.al2023
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt QueueDLQ.Arn, maxReceiveCount: 5}
  QueueDLQ:
    Type: AWS::SQS::Queue
  # Rule 8 wants every dead end watched; the alarm is not what this template tests.
  DeadEndsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - {Id: total, Expression: SUM(METRICS()), ReturnData: true}
        - Id: q1
          ReturnData: false
          MetricStat:
            Metric: {Namespace: AWS/SQS, MetricName: ApproximateNumberOfMessagesVisible, Dimensions: [{Name: QueueName, Value: !GetAtt QueueDLQ.QueueName}]}
            Period: 60
            Stat: Maximum
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [arn:aws:sns:us-east-1:123456789012:alarms]
      OKActions: [arn:aws:sns:us-east-1:123456789012:alarms]
  Secret:
    Type: AWS::SecretsManager::Secret
  # Policy templates on its own resources: nothing for rules 3-5, but still SAM's role.
  BadGeneratedRole:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - SQSPollerPolicy: {QueueName: !GetAtt Queue.QueueName}
        - SQSSendMessagePolicy: {QueueName: !GetAtt QueueDLQ.QueueName}
        - AWSSecretsManagerGetSecretValuePolicy: {SecretArn: !Ref Secret}
  BadManagedPolicies:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AmazonDynamoDBFullAccess
        - arn:aws:iam::aws:policy/AmazonSQSFullAccess
  BadManagedPolicyAlone:
    Type: AWS::Serverless::Function
    Properties:
      Policies: AWSLambdaExecute
  BadForeignPolicyTemplate:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - SQSSendMessagePolicy: {QueueName: shop-dev-inventory}
  BadCrudPolicyTemplate:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref Table}
  BadPutEventsPolicyTemplate:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - EventBridgePutEventsPolicy: {EventBusName: !Ref EventBusName}
"""

SAM_GENERATED_ROLES_SEEDED = [
    ("BadGeneratedRole", 6),
    ("BadManagedPolicies", 6),
    ("BadManagedPolicies.Policies[0]", 3),
    ("BadManagedPolicies.Policies[1]", 3),
    ("BadManagedPolicyAlone", 6),
    ("BadManagedPolicyAlone.Policies", 3),
    ("BadForeignPolicyTemplate", 6),
    ("BadForeignPolicyTemplate.Policies[0]", 3),
    ("BadCrudPolicyTemplate", 6),
    ("BadCrudPolicyTemplate.Policies[0]", 4),
    ("BadPutEventsPolicyTemplate", 6),
    ("BadPutEventsPolicyTemplate.Policies[0]", 5),
]

# The root template is no capability: it may publish as nobody, and a nested stack's outputs
# are other stacks' resources.
# Rules 9-10. Good* resources keep their data as the rules ask (one literal, one per stage);
# each Bad* is one way to lose it. NO_EXTENSIONS uses an intrinsic DeletionPolicy without
# the transform that resolves it, and has a provider URL nothing guards in prod.
RETENTION = """
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Parameters:
  Stage: {Type: String, AllowedValues: [dev, prod]}
  PaymentProviderUrl: {Type: String, Default: ""}
  AllowSandboxInProd: {Type: String, Default: "false"}
Rules:
  ProdChargesThroughAProvider:
    RuleCondition: !Equals [!Ref Stage, prod]
    Assertions:
      - Assert: !Or [!Not [!Equals [!Ref PaymentProviderUrl, ""]], !Equals [!Ref AllowSandboxInProd, "true"]]
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Equals [dev, !Ref Stage]
  UseSandbox: !Equals [!Ref PaymentProviderUrl, ""]
Resources:
  GoodTableAlwaysKept:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  GoodTableKeptInProd:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: !If [IsProd, Retain, Delete]
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: !If [IsProd, true, false]
  GoodUserPool:
    Type: AWS::Cognito::UserPool
    DeletionPolicy: !If [IsProd, Retain, Delete]
    UpdateReplacePolicy: Retain
    Properties:
      DeletionProtection: !If [IsProd, ACTIVE, INACTIVE]
  SandboxLedgerTable:
    Type: AWS::DynamoDB::Table
    Condition: UseSandbox
    DeletionPolicy: Delete
    UpdateReplacePolicy: Delete
  SandboxAlwaysTable:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Delete
  BadTableWithoutRecovery:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: false}
      DeletionProtectionEnabled: true
  BadTableDeletedWithItsStack:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Delete
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: !If [IsProd, true, false]
  BadTableKeptOnlyInDev:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: !If [IsDev, Retain, Delete]
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  BadTableDroppedOnReplacement:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
  BadTableUnprotected:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: !If [IsProd, Retain, Delete]
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: !If [IsProd, false, true]
  BadUserPoolUnprotected:
    Type: AWS::Cognito::UserPool
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
"""

RETENTION_SEEDED = [
    ("SandboxAlwaysTable", 9),
    ("BadTableWithoutRecovery", 9),
    ("BadTableDeletedWithItsStack", 9),
    ("BadTableKeptOnlyInDev", 9),
    ("BadTableDroppedOnReplacement", 9),
    ("BadTableUnprotected", 9),
    ("BadUserPoolUnprotected", 9),
]

NO_EXTENSIONS = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String}
  PaymentProviderUrl: {Type: String, Default: ""}
Rules:
  # About the stage, not about the provider.
  ProdNeedsAStage:
    RuleCondition: !Equals [!Ref Stage, prod]
    Assertions:
      - Assert: !Not [!Equals [!Ref Stage, ""]]
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: !If [IsProd, Retain, Delete]
    UpdateReplacePolicy: Retain
    Properties:
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: !If [IsProd, true, false]
"""

NO_EXTENSIONS_SEEDED = [("Transform", 9), ("Rules", 10)]

ROOT = """
Transform: AWS::Serverless-2016-10-31
Resources:
  EventBus:
    Type: AWS::Events::EventBus
    Properties: {Name: shop}
  OrderingService:
    Type: AWS::Serverless::Application
    Properties:
      Location: functions/ordering/template.yaml
  BadRootPublisher:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: publish
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: events:PutEvents
                Resource: !GetAtt EventBus.Arn
                Condition: {StringEquals: {events:source: shop.ordering}}
        - PolicyName: read
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource: !Sub
                  - arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Name}
                  - Name: !GetAtt OrderingService.Outputs.OrderingTableName
"""

ROOT_SEEDED = [
    ("BadRootPublisher.Policies[0]", 5),
    ("BadRootPublisher.Policies[1]", 3),
]

# The issue's own case, on copies of the real ordering template. The unmodified copy must
# pass; each seeded copy must fail with exactly its findings.
ROOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CAPABILITY_COPY = os.path.join(ROOT_DIR, "functions", "ordering", "template.yaml")
CONSUMER = "OrderingConsumerFunction"
CONSUMER_ROLE = "OrderingConsumerFunctionRole"


def consumer_statements(template: dict) -> list:
    return template["Resources"][CONSUMER_ROLE]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def consumer_role_grants_inventory_table(template: dict) -> tuple[dict, list[tuple[str, int]]]:
    """Issue 6's Done-when: ordering's consumer granted inventory's table in its own role,
    once by a new parameter, once by literal ARN. Rule 3, at each statement."""
    seeded = copy.deepcopy(template)
    seeded["Parameters"]["InventoryTableArn"] = {"Type": "String"}
    statements = consumer_statements(seeded)
    first = len(statements)
    statements += [
        {"Sid": "InventoryTableByParameter", "Effect": "Allow", "Action": ["dynamodb:GetItem"],
         "Resource": {"Ref": "InventoryTableArn"}},
        {"Sid": "InventoryTableByArn", "Effect": "Allow", "Action": ["dynamodb:GetItem"],
         "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-inventory"},
    ]
    where = f"{CONSUMER_ROLE}.Policies[0].Statement"
    return seeded, [
        (f"{where}[{first}] (InventoryTableByParameter)", 3),
        (f"{where}[{first + 1}] (InventoryTableByArn)", 3),
    ]


def consumer_without_role_grants_inventory_table(template: dict) -> tuple[dict, list[tuple[str, int]]]:
    """The same grant the way it was possible before explicit roles: the consumer back on SAM's
    generated role (rule 6), given DynamoDBCrudPolicy for inventory's table (rule 3, and rule
    4 for the template's table/<name>/index/*)."""
    seeded = copy.deepcopy(template)
    seeded["Parameters"]["InventoryTableName"] = {"Type": "String"}
    props = seeded["Resources"][CONSUMER]["Properties"]
    del props["Role"]
    props["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "InventoryTableName"}}}]
    return seeded, [(CONSUMER, 6), (f"{CONSUMER}.Policies[0]", 3), (f"{CONSUMER}.Policies[0]", 4)]


def consumer_role_writes_relay_logs(template: dict) -> tuple[dict, list[tuple[str, int]]]:
    """The consumer's role made to write into the relay's log group: rule 7."""
    seeded = copy.deepcopy(template)
    statement = next(s for s in consumer_statements(seeded) if s.get("Sid") == "WriteOwnLogs")
    statement["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        "${OrderingRelayFunctionLogGroup}:log-stream:*"
    }
    index = consumer_statements(seeded).index(statement)
    return seeded, [(f"{CONSUMER_ROLE}.Policies[0].Statement[{index}] (WriteOwnLogs)", 7)]


def dlq_alarm_never_clears_and_relay_failures_unwatched(template: dict) -> tuple[dict, list[tuple[str, int]]]:
    """Ordering's DLQ alarm loses its OKActions, and the relay's failure queue its alarm (the
    dashboard's reference to that alarm is not these rules' business). Rule 8, twice."""
    seeded = copy.deepcopy(template)
    resources = seeded["Resources"]
    del resources["OrderingDLQAlarm"]["Properties"]["OKActions"]
    del resources["RelayFailureAlarm"]
    return seeded, [("OrderingDLQAlarm", 8), ("RelayFailureQueue", 8)]


CAPABILITY_COPY_CASES = [
    ("ordering's function granted inventory's table, in its role (issue 6)", consumer_role_grants_inventory_table),
    ("ordering's function on SAM's role, granted inventory's table", consumer_without_role_grants_inventory_table),
    ("ordering's function writing the relay's logs", consumer_role_writes_relay_logs),
    ("ordering's DLQ alarm never clears, its relay's failures unwatched", dlq_alarm_never_clears_and_relay_failures_unwatched),
]


def rule_of(finding: str) -> int | None:
    match = re.search(r": rule (\d+): ", finding)
    return int(match.group(1)) if match else None


def reported_at(finding: str, where: str) -> bool:
    return finding.startswith(where) and finding[len(where) : len(where) + 1] in (" ", ":", ".")


def expect(name: str, path: str, seeded: list[tuple[str, int]]) -> list[str]:
    """Problems with the findings for the template at path: each seeded (place, rule) reported
    exactly once, nothing else reported."""
    findings = check_file(path)
    problems = []
    for where, rule in seeded:
        hits = [f for f in findings if reported_at(f, where) and rule_of(f) == rule]
        if len(hits) != 1:
            problems.append(f"{name}: expected exactly one rule {rule} finding for {where}, got {len(hits)}")
    extra = [f for f in findings if not any(reported_at(f, w) and rule_of(f) == r for w, r in seeded)]
    problems += [f"{name}: false positive: {f}" for f in extra]
    if problems:
        problems += [f"{name}: findings were:", *(f"  {f}" for f in findings)]
    return problems


def write(directory: str, name: str, text: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def self_test() -> int:
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        # Rules 3-7 read the capability from the path: functions/<capability>/template.yaml.
        def capability(case: str, text: str) -> str:
            return write(os.path.join(tmp, case, "functions", "ordering"), "template.yaml", text)

        cases = [
            ("broken", write(tmp, "broken.yaml", BROKEN), SEEDED),
            ("least-privilege", capability("least-privilege", LEAST_PRIVILEGE), LEAST_PRIVILEGE_SEEDED),
            ("SAM-generated roles", capability("generated", SAM_GENERATED_ROLES), SAM_GENERATED_ROLES_SEEDED),
            ("root", write(os.path.join(tmp, "root"), "template.yaml", ROOT), ROOT_SEEDED),
            ("retention", write(tmp, "retention.yaml", RETENTION), RETENTION_SEEDED),
            ("no language extensions", write(tmp, "no-extensions.yaml", NO_EXTENSIONS), NO_EXTENSIONS_SEEDED),
        ]
        original, matches = decode(CAPABILITY_COPY)
        if original is None:
            problems.append(f"cannot read {CAPABILITY_COPY} to copy it: {matches}")
        else:
            # Written back as JSON, which is YAML too: the decoded nodes serialise as plain data.
            cases.append(("ordering copy", capability("clean", json.dumps(original, indent=1)), []))
            for n, (name, seed) in enumerate(CAPABILITY_COPY_CASES):
                seeded, defects = seed(original)
                cases.append((name, capability(f"seeded-{n}", json.dumps(seeded, indent=1)), defects))
        for name, path, seeded_defects in cases:
            problems += expect(name, path, seeded_defects)
    if problems:
        print("self-test FAILED: the checks no longer catch what they must:", *problems, sep="\n  ")
        return 1
    total = sum(len(seeded_defects) for _, _, seeded_defects in cases)
    print(f"self-test: all {total} seeded defects caught in {len(cases)} templates, no false positives")
    return 0


def main(argv: list[str]) -> int:
    return template_check_cli.run(argv, __doc__, check_file, self_test)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
