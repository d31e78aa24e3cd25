#!/usr/bin/env python3
"""cfn-lint on the CloudFormation that SAM expands a template into.

Usage:
    lint_expanded.py TEMPLATE...   lint templates; exit 1 on any finding
    lint_expanded.py --self-test   prove it sees into SAM event sources; exit 1 if not
Run it with the lint venv's python (local/scripts/lint-templates does).

Why: since 1.54, cfn-lint no longer runs the SAM transform. It validates
AWS::Serverless::* resources against SAM schemas instead, and (1.58, measured) that
leaves blind spots: nothing under a function's Events is checked (an unknown event Type,
a bad StartingPosition, a !GetAtt to a resource that does not exist all pass), nor the
Resource of an inline policy statement. `sam validate --lint` runs the same cfn-lint.
This script does what cfn-lint used to do: expand the template with the SAM translator
(aws-sam-translator, which the pinned aws-sam-cli brings), offline, with local code
paths replaced by placeholder S3 locations, then lint the expanded CloudFormation, where
the event source mappings, roles and permissions SAM generates are ordinary resources.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any

import cfnlint.api
from cfnlint.config import ManualArgs
from cfnlint.decode import decode
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

import template_check_cli

REGION = "us-east-1"
# The translator warns about its (unused) metrics on exit; that is noise here.
logging.getLogger("samtranslator").setLevel(logging.ERROR)
# Properties holding a local path that `sam build`/`sam package` would upload; the
# translator insists on S3 locations, so each gets a placeholder of the right shape.
LOCAL_PATHS = {
    "AWS::Serverless::Function": ("CodeUri", "s3"),
    "AWS::Serverless::LayerVersion": ("ContentUri", "s3"),
    "AWS::Serverless::Api": ("DefinitionUri", "s3"),
    "AWS::Serverless::HttpApi": ("DefinitionUri", "s3"),
    "AWS::Serverless::StateMachine": ("DefinitionUri", "s3"),
    "AWS::Serverless::Application": ("Location", "https"),
}


class NoManagedPolicies:
    """The translator only needs this to resolve managed policies given by bare name."""

    def load(self) -> dict[str, str]:
        return {}


def with_placeholder_paths(template: dict[str, Any]) -> dict[str, Any]:
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in LOCAL_PATHS:
            continue
        key, scheme = LOCAL_PATHS[resource["Type"]]
        props = resource.get("Properties") or {}
        value = props.get(key)
        if isinstance(value, str) and not value.startswith(("s3://", "https://")):
            props[key] = (
                f"s3://lint-placeholder/{logical_id}.zip"
                if scheme == "s3"
                else f"https://s3.amazonaws.com/lint-placeholder/{logical_id}.yaml"
            )
    # A function without its own CodeUri takes the one from Globals.
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    if isinstance(globals_fn.get("CodeUri"), str):
        globals_fn["CodeUri"] = "s3://lint-placeholder/global.zip"
    return template


def lint(path: str) -> list[str]:
    decoded, matches = decode(path)
    if decoded is None:
        return [f"cannot read template: {m}" for m in matches] or ["cannot read template"]
    # Plain JSON types: the translator mutates and copies, and does not know cfn-lint's nodes.
    template = with_placeholder_paths(json.loads(json.dumps(decoded)))
    if "AWS::Serverless-2016-10-31" not in json.dumps(template.get("Transform", "")):
        expanded = template
    else:
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        try:
            expanded = transform(template, {"AWS::Region": REGION}, NoManagedPolicies())
        except InvalidDocumentException as e:
            return [f"SAM transform: {cause}" for cause in e.causes]
    findings = cfnlint.api.lint(json.dumps(expanded), config=ManualArgs(regions=[REGION]))
    return [
        f"{m.rule.id} {m.message} (expanded template: {'/'.join(str(p) for p in m.path)})"
        for m in findings
    ]


# Defects plain cfn-lint 1.58 misses in a SAM template (each would fail only at deploy
# time); the expanded lint must report every one of them.
BROKEN = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      BillingMode: PAY_PER_REQUEST
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Relay:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Policies:
        - Statement:
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: !Ref SeededMissingPolicyTarget
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt SeededMissingStream.StreamArn
            StartingPosition: SEEDED_BAD_POSITION
            FunctionResponseTypes: [ReportBatchItemFailures]
"""
SEEDED = ["SeededMissingPolicyTarget", "SeededMissingStream", "SEEDED_BAD_POSITION"]


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "broken.yaml")
        with open(path, "w") as f:
            f.write(BROKEN)
        findings = lint(path)
    missed = [s for s in SEEDED if not any(s in f for f in findings)]
    if missed:
        print("self-test FAILED: expanded lint no longer reports", missed, "findings were:", *findings, sep="\n  ")
        return 1
    print(f"self-test: all {len(SEEDED)} seeded defects reported")
    return 0


def main(argv: list[str]) -> int:
    return template_check_cli.run(argv, __doc__, lint, self_test)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
