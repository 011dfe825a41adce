"""Seed 001's Django settings snippet (boto3 get_secret with lru_cache and json.loads), then boto3
behaviours the seeds rely on: modeled exceptions, idempotent tokens, binary values, paginators, batch
reads and the value limits. Connection from the environment (AWS_ENDPOINT_URL etc.)."""

import json
import logging
import uuid
from functools import lru_cache

import boto3
import botocore

logger = logging.getLogger(__name__)

# --- setup the seed assumes: the secrets exist --------------------------------------------------
admin = boto3.client("secretsmanager", region_name="us-east-1")
admin.create_secret(Name="/prod/backend/database_password",
                    SecretString=json.dumps({"username": "admin", "password": "db-pass-1"}))
admin.create_secret(Name="/prod/backend/jwt_secret_key", SecretString=json.dumps({"key": "jwt-1"}))


# --- the seed's snippet, verbatim in logic ------------------------------------------------------
@lru_cache(maxsize=128)
def get_secret(secret_name: str, region_name: str = "us-east-1") -> dict:
    """Retrieve secret from AWS Secrets Manager with caching."""
    client = boto3.client("secretsmanager", region_name=region_name)

    try:
        response = client.get_secret_value(SecretId=secret_name)
        return json.loads(response["SecretString"])
    except Exception as e:
        logger.error(f"Failed to retrieve secret {secret_name}: {e}")
        raise


db_password = get_secret("/prod/backend/database_password")
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "lightwave",
                         "USER": "admin", "PASSWORD": db_password, "PORT": "5432"}}
assert DATABASES["default"]["PASSWORD"] == {"username": "admin", "password": "db-pass-1"}
jwt_secret = get_secret("/prod/backend/jwt_secret_key")
assert jwt_secret == {"key": "jwt-1"}
assert get_secret.cache_info().hits == 0 and get_secret("/prod/backend/jwt_secret_key") is jwt_secret

# --- modeled exceptions -------------------------------------------------------------------------
try:
    admin.get_secret_value(SecretId="/prod/backend/missing")
    raise AssertionError("missing secret returned a value")
except admin.exceptions.ResourceNotFoundException as e:
    assert e.response["Error"]["Message"] == "Secrets Manager can't find the specified secret."
try:
    admin.create_secret(Name="/prod/backend/jwt_secret_key", SecretString="x")
    raise AssertionError("duplicate create succeeded")
except admin.exceptions.ResourceExistsException:
    pass

# --- ClientRequestToken idempotency -------------------------------------------------------------
token = str(uuid.uuid4())
first = admin.put_secret_value(SecretId="/prod/backend/jwt_secret_key", SecretString="v2", ClientRequestToken=token)
again = admin.put_secret_value(SecretId="/prod/backend/jwt_secret_key", SecretString="v2", ClientRequestToken=token)
assert first["VersionId"] == again["VersionId"] == token
try:
    admin.put_secret_value(SecretId="/prod/backend/jwt_secret_key", SecretString="other", ClientRequestToken=token)
    raise AssertionError("same token with another value succeeded")
except admin.exceptions.ResourceExistsException:
    pass

# --- binary values ------------------------------------------------------------------------------
blob = bytes(range(256))
admin.create_secret(Name="/prod/backend/tls_key", SecretBinary=blob)
got = admin.get_secret_value(SecretId="/prod/backend/tls_key")
assert got["SecretBinary"] == blob and "SecretString" not in got

# --- pagination: 25 secrets, pages of 10, each seen once -----------------------------------------
for i in range(25):
    admin.create_secret(Name=f"/paged/s{i:02}", SecretString="v")
seen = []
pages = 0
for page in admin.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": ["/paged/"]}], PaginationConfig={"PageSize": 10}):
    pages += 1
    seen += [s["Name"] for s in page["SecretList"]]
assert pages == 3, pages
assert sorted(seen) == [f"/paged/s{i:02}" for i in range(25)], seen

# --- batch reads: a missing id is an entry in Errors ---------------------------------------------
batch = admin.batch_get_secret_value(SecretIdList=["/paged/s00", "/paged/missing"])
assert [v["Name"] for v in batch["SecretValues"]] == ["/paged/s00"]
assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"
assert batch["Errors"][0]["SecretId"] == "/paged/missing"

# --- limits and names ---------------------------------------------------------------------------
admin.create_secret(Name="/limits/max", SecretString="x" * 65536)
assert len(admin.get_secret_value(SecretId="/limits/max")["SecretString"]) == 65536
try:
    admin.create_secret(Name="/limits/over", SecretString="x" * 65537)
    raise AssertionError("over-limit value accepted")
except botocore.exceptions.ClientError as e:
    # botocore validates lengths client-side for some shapes; either way nothing over the limit lands.
    assert e.response["Error"]["Code"] in ("InvalidParameterException",), e.response
except botocore.exceptions.ParamValidationError:
    pass
try:
    admin.describe_secret(SecretId="/limits/over")
    raise AssertionError("over-limit secret exists")
except admin.exceptions.ResourceNotFoundException:
    pass
try:
    admin.create_secret(Name="bad name with spaces", SecretString="x")
    raise AssertionError("invalid name accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response

print("seed 001 (boto3): all checks passed")
