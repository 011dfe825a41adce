"""Seed 001's Django settings snippet (get_secret with lru_cache, boto3.client('secretsmanager', region_name=...),
json.loads(response['SecretString'])) run against Coffer with real boto3, then the boto3 behaviours an application
relies on: modelled exceptions, idempotent ClientRequestToken, binary values, the list_secrets paginator,
BatchGetSecretValue errors, the value-size limit and name validation.

The connection comes from the environment (AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE, AWS_REGION): boto3 honours
AWS_ENDPOINT_URL, so the seed's code runs unchanged. Exits non-zero at the first failed check.
"""

import json
import logging
import os
import sys
import uuid
from functools import lru_cache

import boto3
import botocore
from botocore.exceptions import ClientError

logging.basicConfig(level=logging.CRITICAL)
logger = logging.getLogger("settings")  # the seed's snippet logs through a module-level `logger`


def step(text):
    print(f"--- {text}", flush=True)


def check(condition, what, detail=""):
    if not condition:
        print(f"FAIL: {what}{': ' + repr(detail) if detail != '' else ''}", file=sys.stderr)
        sys.exit(1)


def expect_error(code, call, message=None, **kwargs):
    """`call(**kwargs)` must raise a ClientError with that code (and that exact message, if given)."""
    try:
        result = call(**kwargs)
    except ClientError as e:
        err = e.response["Error"]
        check(err["Code"] == code, f"{call.__name__}: expected {code}", err)
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{call.__name__}: HTTP status of {code}",
              e.response["ResponseMetadata"])
        if message is not None:
            check(err["Message"] == message, f"{call.__name__}: message of {code}", f"expected {message!r}, got {err['Message']!r}")
        return e
    check(False, f"{call.__name__}: expected {code}, but it succeeded", result)


print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {os.environ.get('AWS_ENDPOINT_URL')}")
admin = boto3.client("secretsmanager", region_name="us-east-1")

step("setup the SOP assumes: its JSON secrets exist (created with boto3)")
DB_CREDS = {"username": "admin", "password": "pä$$ \"w0rd\" 🔑"}
created = admin.create_secret(Name="/prod/backend/database_password", SecretString=json.dumps(DB_CREDS),
                              Description="PostgreSQL master password for production",
                              Tags=[{"Key": "Environment", "Value": "prod"}, {"Key": "ManagedBy", "Value": "Terraform"}])
check(created["Name"] == "/prod/backend/database_password", "create_secret Name", created)
check(created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:") and
      created["ARN"].rsplit(":secret:", 1)[1][:-7] == "/prod/backend/database_password", "create_secret ARN", created)
admin.create_secret(Name="/prod/backend/jwt_secret_key", SecretString=json.dumps({"key": "jwt-signing-key-1"}))


# --- the seed's snippet (backend/core/settings.py), unchanged but for a server behind AWS_ENDPOINT_URL ----------
@lru_cache(maxsize=128)
def get_secret(secret_name: str, region_name: str = 'us-east-1') -> dict:
    """Retrieve secret from AWS Secrets Manager with caching."""
    client = boto3.client('secretsmanager', region_name=region_name)

    try:
        response = client.get_secret_value(SecretId=secret_name)
        return json.loads(response['SecretString'])
    except Exception as e:
        logger.error(f"Failed to retrieve secret {secret_name}: {e}")
        raise


step("response shapes: GetSecretValue, DescribeSecret, ListSecretVersionIds and ListSecrets members")
got = admin.get_secret_value(SecretId="/prod/backend/database_password")
check(set(got) == {"ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate", "ResponseMetadata"},
      "GetSecretValue members", sorted(got))
check(got["VersionId"] == created["VersionId"] and got["VersionStages"] == ["AWSCURRENT"], "GetSecretValue version", got)
check(got["ResponseMetadata"].get("RequestId"), "x-amzn-RequestId (ResponseMetadata.RequestId)", got["ResponseMetadata"])
desc = admin.describe_secret(SecretId="/prod/backend/database_password")
check("KmsKeyId" not in desc, "DescribeSecret omits KmsKeyId for the default key", desc.get("KmsKeyId"))
check(desc["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}, "DescribeSecret VersionIdsToStages", desc)
check(desc["Description"] == "PostgreSQL master password for production", "DescribeSecret Description", desc)
check(sorted((t["Key"], t["Value"]) for t in desc["Tags"]) == [("Environment", "prod"), ("ManagedBy", "Terraform")],
      "DescribeSecret Tags", desc.get("Tags"))
check("CreatedDate" in desc and "LastChangedDate" in desc, "DescribeSecret dates", sorted(desc))
listed = admin.list_secret_version_ids(SecretId="/prod/backend/database_password")
check(listed["ARN"] == created["ARN"] and listed["Name"] == created["Name"], "ListSecretVersionIds ARN/Name", listed)
check([v["KmsKeyIds"] for v in listed["Versions"]] == [["DefaultEncryptionKey"]], "ListSecretVersionIds KmsKeyIds",
      listed["Versions"])
entry = [s for s in admin.list_secrets()["SecretList"] if s["Name"] == "/prod/backend/database_password"]
check(len(entry) == 1 and entry[0]["SecretVersionsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
      and "VersionIdsToStages" not in entry[0], "ListSecrets entry", entry)

step("the seed's settings.py: DATABASES and SECRET_KEY come from get_secret")
db_password = get_secret('/prod/backend/database_password')

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': 'lightwave',
        'USER': 'admin',
        'PASSWORD': db_password,
        'HOST': os.environ.get('DB_HOST'),
        'PORT': '5432',
    }
}

jwt_secret = get_secret('/prod/backend/jwt_secret_key')
SECRET_KEY = jwt_secret
check(DATABASES["default"]["PASSWORD"] == DB_CREDS, "DATABASES PASSWORD", DATABASES["default"]["PASSWORD"])
check(SECRET_KEY == {"key": "jwt-signing-key-1"}, "SECRET_KEY", SECRET_KEY)

step("lru_cache: a second lookup is served from the cache")
check(get_secret('/prod/backend/jwt_secret_key') is jwt_secret, "cached get_secret returns the same object")
check(get_secret.cache_info().hits == 1 and get_secret.cache_info().misses == 2, "cache statistics", get_secret.cache_info())

step("get_secret on a missing secret re-raises client.exceptions.ResourceNotFoundException")
try:
    get_secret('/prod/backend/missing')
    check(False, "get_secret of a missing secret returned")
except admin.exceptions.ResourceNotFoundException as e:
    check(e.response["Error"]["Message"] == "Secrets Manager can't find the specified secret.", "message", e.response["Error"])
    check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "HTTP status", e.response["ResponseMetadata"])
    check(e.operation_name == "GetSecretValue", "operation name", e.operation_name)

step("duplicate create_secret raises client.exceptions.ResourceExistsException")
try:
    admin.create_secret(Name="/prod/backend/jwt_secret_key", SecretString="x")
    check(False, "duplicate create_secret succeeded")
except admin.exceptions.ResourceExistsException:
    pass
check(get_secret.__wrapped__('/prod/backend/jwt_secret_key') == {"key": "jwt-signing-key-1"}, "value after duplicate create")

step("PutSecretValue with a ClientRequestToken is idempotent: same token + same value = same version")
token = str(uuid.uuid4())
first = admin.put_secret_value(SecretId="/prod/backend/jwt_secret_key", SecretString='{"key": "jwt-2"}',
                               ClientRequestToken=token)
again = admin.put_secret_value(SecretId="/prod/backend/jwt_secret_key", SecretString='{"key": "jwt-2"}',
                               ClientRequestToken=token)
check(first["VersionId"] == token, "the ClientRequestToken becomes the VersionId", first)
check(again["VersionId"] == token, "the repeated request answers the same VersionId", again)
versions = admin.list_secret_version_ids(SecretId="/prod/backend/jwt_secret_key", IncludeDeprecated=True)["Versions"]
check(len(versions) == 2, "the repeat created no version", versions)
stages = {v["VersionId"]: sorted(v["VersionStages"]) for v in versions}
check(stages[token] == ["AWSCURRENT"], "the new version is AWSCURRENT", stages)

step("same token + a different value raises ResourceExistsException")
secret_arn = admin.describe_secret(SecretId="/prod/backend/jwt_secret_key")["ARN"]
expect_error("ResourceExistsException", admin.put_secret_value,
             message=f"You can't use ClientRequestToken {token} because that value is already in use for a version of "
                     f"secret {secret_arn}.",
             SecretId="/prod/backend/jwt_secret_key", SecretString='{"key": "something else"}', ClientRequestToken=token)
check(admin.get_secret_value(SecretId="/prod/backend/jwt_secret_key")["SecretString"] == '{"key": "jwt-2"}',
      "value after the rejected put")

step("SecretString and SecretBinary together are InvalidParameterException")
expect_error("InvalidParameterException", admin.create_secret, Name="/prod/backend/both", SecretString="s", SecretBinary=b"b")

step("SecretBinary round-trips every byte value, and a binary secret has no SecretString")
blob = bytes(range(256)) * 4
admin.create_secret(Name="/prod/backend/tls_key", SecretBinary=blob)
got = admin.get_secret_value(SecretId="/prod/backend/tls_key")
check(got["SecretBinary"] == blob, "SecretBinary round trip", len(got.get("SecretBinary", b"")))
check("SecretString" not in got, "binary secret has no SecretString", got.get("SecretString"))

step("list_secrets paginator: 25 secrets in pages of MaxResults=10 come back once each")
for i in range(25):
    admin.create_secret(Name=f"/paged/secret-{i:02}", SecretString=f"value-{i}")
pages = list(admin.get_paginator("list_secrets").paginate(
    MaxResults=10, Filters=[{"Key": "name", "Values": ["/paged/"]}]))
sizes = [len(p["SecretList"]) for p in pages]
names = [s["Name"] for p in pages for s in p["SecretList"]]
check(all(n <= 10 for n in sizes) and len(pages) == 3, "page sizes (filtered)", sizes)
check(sorted(names) == [f"/paged/secret-{i:02}" for i in range(25)], "every secret exactly once (filtered)", names)
check(all("NextToken" in p for p in pages[:-1]) and "NextToken" not in pages[-1], "NextToken on all but the last page",
      [sorted(p.keys()) for p in pages])
all_names = [s["Name"] for p in admin.get_paginator("list_secrets").paginate(MaxResults=10) for s in p["SecretList"]]
check(len(all_names) == len(set(all_names)) == 28, "every secret exactly once (unfiltered)", all_names)

step("batch_get_secret_value with SecretIdList: a missing id is an entry in Errors, not an exception")
batch = admin.batch_get_secret_value(SecretIdList=["/paged/secret-00", "/paged/missing", "/paged/secret-01"])
values = {v["Name"]: v for v in batch["SecretValues"]}
check(sorted(values) == ["/paged/secret-00", "/paged/secret-01"], "SecretValues names", list(values))
check(values["/paged/secret-00"]["SecretString"] == "value-0", "SecretValues value", values["/paged/secret-00"])
check(values["/paged/secret-01"]["VersionStages"] == ["AWSCURRENT"], "SecretValues stages", values["/paged/secret-01"])
check(len(batch["Errors"]) == 1, "one error", batch["Errors"])
error = batch["Errors"][0]
check(error["SecretId"] == "/paged/missing" and error["ErrorCode"] == "ResourceNotFoundException", "Errors entry", error)
check(error.get("Message") == "Secrets Manager can't find the specified secret.", "Errors entry message", error)

step("a 65,536-byte value is accepted; 65,537 bytes is InvalidParameterException and stores nothing")
admin.create_secret(Name="/limits/max", SecretString="x" * 65536)
check(len(admin.get_secret_value(SecretId="/limits/max")["SecretString"]) == 65536, "65,536-byte value round trip")
expect_error("InvalidParameterException", admin.create_secret, Name="/limits/over", SecretString="x" * 65537)
expect_error("ResourceNotFoundException", admin.describe_secret, SecretId="/limits/over")
expect_error("InvalidParameterException", admin.put_secret_value, SecretId="/limits/max", SecretString="y" * 65537)
check(admin.get_secret_value(SecretId="/limits/max")["SecretString"] == "x" * 65536, "value after the rejected put")

step("an invalid secret name is ValidationException")
expect_error("ValidationException", admin.create_secret,
             message="Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
             Name="bad name with spaces", SecretString="x")

print("seed 001 (boto3): all checks passed")
