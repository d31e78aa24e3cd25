#!/usr/bin/env python3
"""Publishes the storefront (web/) to a deployed shop: the files into the platform's
private bucket, a config.json written from the stacks' outputs, then an invalidation of
the CloudFront distribution in front of it.

Usage (credentials as for `sam deploy`; run through `local/scripts/deploy web`):
    deploy_web.py --stage STAGE [--stack STACK]
    deploy_web.py --self-test      against moto's S3 and CloudFront, in-process

STACK is the stack holding the platform: shop-<stage>-platform (the default, when each
capability is its own stack) or the root stack (shop-<stage>) when everything is one
nested stack. The checkout offers the sandbox's test cards when payment charges through
the sandbox (its stack has the SandboxProviderUrl output).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
# What the files of web/ are served as; a file of another kind is refused rather than
# served with a guessed type (and refused by the browser under nosniff).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
# The files are not fingerprinted: every response is revalidated, so a deploy shows at once.
CACHE_CONTROL = "no-cache"


def outputs(cloudformation, stack: str) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def payment_stack(cloudformation, stage: str, stack: str) -> str | None:
    """The stack payment runs in: its own, or the nested one under the root stack."""
    if stack == f"shop-{stage}-platform":
        return f"shop-{stage}-payment"
    try:
        resource = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId="PaymentService")
    except cloudformation.exceptions.ClientError:
        return None
    return resource["StackResourceDetail"].get("PhysicalResourceId")


def charges_through_sandbox(cloudformation, stage: str, stack: str) -> bool:
    name = payment_stack(cloudformation, stage, stack)
    if not name:
        return False
    try:
        return "SandboxProviderUrl" in outputs(cloudformation, name)
    except cloudformation.exceptions.ClientError:
        return False


def config_for(platform: dict[str, str], sandbox: bool) -> dict:
    """config.json: what the app needs to know of where it runs (local/src/web.rs writes
    the same for shop-local)."""
    missing = [k for k in ("ApiUrl", "UserPoolClientId", "SignInUrl", "WebUrl") if k not in platform]
    if missing:
        raise SystemExit(f"deploy web: the platform stack has no output {', '.join(missing)}; redeploy it from this commit")
    sign_in = platform["SignInUrl"].rstrip("/")
    return {
        # The API through the storefront's own distribution: same origin, no CORS, and
        # the catalog's reads answered at the edge (template.yaml, WebDistribution).
        "apiUrl": platform["WebUrl"].rstrip("/"),
        "clientId": platform["UserPoolClientId"],
        "authorizeUrl": f"{sign_in}/oauth2/authorize",
        "tokenUrl": f"{sign_in}/oauth2/token",
        "logoutUrl": f"{sign_in}/logout",
        "redirectUri": platform["WebUrl"],
        "sandboxPayments": sandbox,
        "operations": False,
        # The root stack has it when it nests the capabilities; a platform deployed alone
        # does not, and the app then polls instead of following orders live.
        "websocketUrl": platform.get("WebSocketUrl"),
    }


def site_files(web: Path = WEB) -> list[tuple[str, Path, str]]:
    """Every file of web/ as (key, path, content type); hidden files are not published."""
    found = []
    for path in sorted(web.rglob("*")):
        relative = path.relative_to(web)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None:
            raise SystemExit(f"deploy web: {relative} is of no known type ({path.suffix}); add it to CONTENT_TYPES")
        found.append((relative.as_posix(), path, content_type))
    return found


def publish(s3, bucket: str, config: dict, web: Path = WEB) -> list[str]:
    """Uploads the site and config.json, then removes what the site no longer has; answers
    the keys written."""
    written = []
    for key, path, content_type in site_files(web):
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type, CacheControl=CACHE_CONTROL)
        written.append(key)
    s3.put_object(Bucket=bucket, Key="config.json", Body=json.dumps(config, indent=2).encode(),
                  ContentType="application/json", CacheControl=CACHE_CONTROL)
    written.append("config.json")
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] not in written]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start:start + 1000]})
    return written


def invalidate(cloudfront, distribution: str, reference: str) -> str:
    answer = cloudfront.create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": reference},
    )
    return answer["Invalidation"]["Id"]


def deploy(stage: str, stack: str | None) -> None:
    import time

    import boto3

    stack = stack or f"shop-{stage}-platform"
    cloudformation = boto3.client("cloudformation")
    platform = outputs(cloudformation, stack)
    config = config_for(platform, charges_through_sandbox(cloudformation, stage, stack))
    for key in ("WebBucketName", "WebDistributionId"):
        if key not in platform:
            raise SystemExit(f"deploy web: {stack} has no output {key}; redeploy the platform from this commit")
    written = publish(boto3.client("s3"), platform["WebBucketName"], config)
    invalidation = invalidate(boto3.client("cloudfront"), platform["WebDistributionId"], f"deploy-web-{time.time_ns()}")
    print(f"deploy web: {len(written)} files to {platform['WebBucketName']}, invalidation {invalidation}")
    print(f"deploy web: open {platform['WebUrl']} (sandbox test cards: {'yes' if config['sandboxPayments'] else 'no'})")


def self_test() -> int:
    import os
    import tempfile

    os.environ.update(AWS_ACCESS_KEY_ID="self-test", AWS_SECRET_ACCESS_KEY="self-test", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    from moto import mock_aws

    problems = []
    config = config_for({"ApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/", "UserPoolClientId": "client",
                         "SignInUrl": "https://shop-dev-1.auth.us-east-1.amazoncognito.com", "WebUrl": "https://d1.cloudfront.net/"}, True)
    if config["tokenUrl"] != "https://shop-dev-1.auth.us-east-1.amazoncognito.com/oauth2/token" \
            or config["apiUrl"] != "https://d1.cloudfront.net" \
            or config["websocketUrl"] is not None:
        problems.append(f"config: {config}")
    keys = [key for key, _, _ in site_files()]
    if "index.html" not in keys or not any(key.startswith("js/") for key in keys):
        problems.append(f"the site's files: {keys}")
    with tempfile.TemporaryDirectory() as tmp:
        web = Path(tmp)
        (web / "js").mkdir()
        (web / "index.html").write_text("<!doctype html>")
        (web / "js" / "app.js").write_text("export {}")
        (web / ".hidden.js").write_text("no")
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="site")
            s3.put_object(Bucket="site", Key="js/old.js", Body=b"gone")
            publish(s3, "site", config, web)
            stored = {o["Key"] for o in s3.list_objects_v2(Bucket="site")["Contents"]}
            if stored != {"index.html", "js/app.js", "config.json"}:
                problems.append(f"published {stored}: the stale file and only it removed, the hidden one never sent")
            head = s3.head_object(Bucket="site", Key="js/app.js")
            if head["ContentType"] != "text/javascript; charset=utf-8" or head["CacheControl"] != CACHE_CONTROL:
                problems.append(f"js/app.js stored as {head['ContentType']}, {head['CacheControl']}")
            (web / "notes.txt").write_text("?")
            try:
                site_files(web)
                problems.append("a file of unknown type was accepted")
            except SystemExit:
                pass
    if problems:
        print("deploy web: self-test FAILED:", *problems, sep="\n  ")
        return 1
    print("deploy web: self-test passed")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, choices=["dev", "prod"])
    parser.add_argument("--stack")
    args = parser.parse_args(argv)
    deploy(args.stage, args.stack)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
