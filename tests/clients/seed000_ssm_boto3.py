"""Seed 000's Parameter Store hierarchy (/amplify/...) driven through real boto3 instead of the aws CLI:
put_parameter (SecureString under the default key and under a customer key, String, Overwrite, Tags),
get_parameter(WithDecryption), get_parameters with InvalidParameters, the get_parameters_by_path paginator
(Recursive, WithDecryption), get_parameter_history, describe_parameters with BeginsWith, labels, and
seed 003-style client-side envelope encryption with KMS data keys.

The connection comes from the environment (AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE, AWS_REGION).
Exits non-zero at the first failed check.
"""

import base64
import sys

import boto3
from botocore.exceptions import ClientError


def step(text):
    print(f"--- {text}", flush=True)


def check(condition, what, detail=""):
    if not condition:
        print(f"FAIL: {what}{': ' + repr(detail) if detail != '' else ''}", file=sys.stderr)
        sys.exit(1)


def expect_error(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        check(e.response["Error"]["Code"] == code, f"{call.__name__} error code", e.response["Error"])
        return e.response["Error"]["Message"]
    check(False, f"{call.__name__} should have failed with {code}")


ssm = boto3.client("ssm", region_name="us-west-1")
kms = boto3.client("kms", region_name="us-west-1")

step("put_parameter: SecureStrings (default and customer key), Strings, tags")
key = kms.create_key(Description="amplify secrets")["KeyMetadata"]["KeyId"]
for name in ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"]:
    ssm.put_parameter(Name=f"/amplify/{name}", Value=f"synthetic-{name}", Type="SecureString")
ssm.put_parameter(Name="/amplify/STRIPE_KEY", Value="synthetic-stripe", Type="SecureString", KeyId=key,
                  Tags=[{"Key": "team", "Value": "billing"}])
ssm.put_parameter(Name="/amplify/config/FROM_EMAIL", Value="noreply@example.com", Type="String")
out = ssm.put_parameter(Name="/amplify/TWILIO_AUTH_TOKEN", Value="synthetic-rotated", Type="SecureString", Overwrite=True)
check(out["Version"] == 2 and out["Tier"] == "Standard", "overwrite makes version 2", out)
expect_error("ParameterAlreadyExists", ssm.put_parameter, Name="/amplify/TWILIO_AUTH_TOKEN", Value="x", Type="SecureString")
expect_error("InvalidKeyId", ssm.put_parameter, Name="/amplify/BAD", Value="x", Type="SecureString", KeyId="alias/nope")

step("get_parameter with and without decryption")
p = ssm.get_parameter(Name="/amplify/TWILIO_AUTH_TOKEN", WithDecryption=True)["Parameter"]
check(p["Value"] == "synthetic-rotated" and p["Version"] == 2 and p["Type"] == "SecureString", "decrypted", p)
check(p["ARN"] == "arn:aws:ssm:us-west-1:000000000000:parameter/amplify/TWILIO_AUTH_TOKEN" or p["ARN"].endswith(":parameter/amplify/TWILIO_AUTH_TOKEN"), "ARN", p["ARN"])
raw = ssm.get_parameter(Name="/amplify/STRIPE_KEY")["Parameter"]["Value"]
check("synthetic" not in raw, "without WithDecryption the value is ciphertext", raw)
base64.b64decode(raw)
check(ssm.get_parameter(Name="/amplify/STRIPE_KEY", WithDecryption=True)["Parameter"]["Value"] == "synthetic-stripe",
      "customer-key SecureString decrypts")
check(ssm.get_parameter(Name="/amplify/TWILIO_AUTH_TOKEN:1", WithDecryption=True)["Parameter"]["Value"]
      == "synthetic-TWILIO_AUTH_TOKEN", "version selector")

step("get_parameters with InvalidParameters")
out = ssm.get_parameters(Names=["/amplify/SENDGRID_API_KEY", "/amplify/MISSING"], WithDecryption=True)
check([x["Value"] for x in out["Parameters"]] == ["synthetic-SENDGRID_API_KEY"], "found", out["Parameters"])
check(out["InvalidParameters"] == ["/amplify/MISSING"], "invalid", out["InvalidParameters"])

step("get_parameters_by_path paginator, recursive, decrypted")
pages = ssm.get_paginator("get_parameters_by_path").paginate(
    Path="/amplify", Recursive=True, WithDecryption=True, PaginationConfig={"PageSize": 2})
found = {x["Name"]: x["Value"] for page in pages for x in page["Parameters"]}
check(len(found) == 5, "five parameters under /amplify", sorted(found))
check(found["/amplify/config/FROM_EMAIL"] == "noreply@example.com", "nested String", found)
one_level = ssm.get_parameters_by_path(Path="/amplify", Recursive=False)["Parameters"]
check("/amplify/config/FROM_EMAIL" not in [x["Name"] for x in one_level], "one level only")

step("history, labels, describe_parameters with BeginsWith")
hist = ssm.get_parameter_history(Name="/amplify/TWILIO_AUTH_TOKEN", WithDecryption=True)["Parameters"]
check([h["Value"] for h in hist] == ["synthetic-TWILIO_AUTH_TOKEN", "synthetic-rotated"], "history", hist)
ssm.label_parameter_version(Name="/amplify/TWILIO_AUTH_TOKEN", ParameterVersion=1, Labels=["previous"])
check(ssm.get_parameter(Name="/amplify/TWILIO_AUTH_TOKEN:previous", WithDecryption=True)["Parameter"]["Version"] == 1,
      "label selector")
desc = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/amplify/TWILIO"]}])
check(sorted(x["Name"] for x in desc["Parameters"]) == ["/amplify/TWILIO_ACCOUNT_SID", "/amplify/TWILIO_AUTH_TOKEN"],
      "BeginsWith", desc["Parameters"])
stripe = ssm.describe_parameters(ParameterFilters=[{"Key": "KeyId", "Values": [key]}])["Parameters"]
check([x["Name"] for x in stripe] == ["/amplify/STRIPE_KEY"], "KeyId filter", stripe)
tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/amplify/STRIPE_KEY")["TagList"]
check(tags == [{"Key": "team", "Value": "billing"}], "tags", tags)

step("client-side envelope encryption with a KMS data key (seed 003's pattern)")
dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"app": "amplify"})
check(len(dk["Plaintext"]) == 32, "32-byte data key")
back = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"app": "amplify"})
check(back["Plaintext"] == dk["Plaintext"] and back["KeyId"].endswith(key), "data key round trip")
expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=dk["CiphertextBlob"])
enc = kms.encrypt(KeyId="alias/aws/ssm", Plaintext=b"synthetic bytes \x00\x01")
check(kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == b"synthetic bytes \x00\x01", "binary round trip")

step("delete")
out = ssm.delete_parameters(Names=["/amplify/STRIPE_KEY", "/amplify/NOPE"])
check(out["DeletedParameters"] == ["/amplify/STRIPE_KEY"] and out["InvalidParameters"] == ["/amplify/NOPE"], "delete", out)
print("seed 000 (boto3, SSM + KMS): all checks passed")
