// Seed 001's Next.js lib/secrets.ts getSecret snippet, run with node and the real @aws-sdk/client-secrets-manager
// against Coffer. The SDK picks the endpoint up from AWS_ENDPOINT_URL (so no explicit `endpoint` is needed; the
// script checks where the requests went) and the credentials from AWS_SHARED_CREDENTIALS_FILE's [default] profile.
// Node resolves the SDK relative to this file, so the test runs a copy placed next to the npm install's node_modules.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  SecretsManagerClient,
  GetSecretValueCommand,
  CreateSecretCommand,
  PutSecretValueCommand,
} from "@aws-sdk/client-secrets-manager";

const step = (text) => console.log(`--- ${text}`);
const sdkVersion = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve("@aws-sdk/client-secrets-manager/package.json"), "utf8"),
).version;
console.log(`@aws-sdk/client-secrets-manager ${sdkVersion}, node ${process.version}, endpoint ${process.env.AWS_ENDPOINT_URL}`);
assert.ok(process.env.AWS_ENDPOINT_URL, "AWS_ENDPOINT_URL must point at the server");

// --- the seed's lib/secrets.ts (types dropped), unchanged otherwise ---------------------------------------------
const client = new SecretsManagerClient({ region: "us-east-1" });

export async function getSecret(secretName) {
  try {
    const command = new GetSecretValueCommand({ SecretId: secretName });
    const response = await client.send(command);

    if (response.SecretString) {
      return JSON.parse(response.SecretString);
    }
    throw new Error("Secret not found");
  } catch (error) {
    console.error(`Failed to retrieve secret ${secretName}:`, error.name, error.message);
    throw error;
  }
}
// ---------------------------------------------------------------------------------------------------------------

// Record where each request actually goes (a test-only middleware; the snippet itself is untouched).
const sentTo = new Set();
client.middlewareStack.add(
  (next) => async (args) => {
    const { protocol, hostname, port } = args.request;
    sentTo.add(`${protocol}//${hostname}:${port}`);
    return next(args);
  },
  { step: "finalizeRequest", name: "recordDestination" },
);

step("setup: the secret the API route reads, created with the same SDK");
const VALUE = { key: "pk_test_frontend", note: "ünïcødé \"quoted\" $dollar 🔑", nested: { n: 42, ok: true } };
const created = await client.send(new CreateSecretCommand({
  Name: "/prod/frontend/stripe_publishable_key",
  SecretString: JSON.stringify(VALUE),
}));
assert.match(created.ARN, /^arn:aws:secretsmanager:us-east-1:\d{12}:secret:\/prod\/frontend\/stripe_publishable_key-[A-Za-z0-9]{6}$/);
assert.equal(created.$metadata.httpStatusCode, 200);

step("the seed's API route: getSecret returns the parsed JSON object");
// Usage in API route
async function GET() {
  const apiKey = await getSecret('/prod/frontend/stripe_publishable_key');
  return apiKey;
}
assert.deepEqual(await GET(), VALUE);

step("after a put-secret-value the route sees the new value");
await client.send(new PutSecretValueCommand({
  SecretId: "/prod/frontend/stripe_publishable_key",
  SecretString: JSON.stringify({ key: "pk_test_rotated" }),
}));
assert.deepEqual(await getSecret("/prod/frontend/stripe_publishable_key"), { key: "pk_test_rotated" });

step("a missing secret rejects with err.name === 'ResourceNotFoundException'");
await assert.rejects(getSecret("/prod/frontend/missing"), (err) => {
  assert.equal(err.name, "ResourceNotFoundException");
  assert.equal(err.message, "Secrets Manager can't find the specified secret.");
  assert.equal(err.$metadata.httpStatusCode, 400);
  assert.equal(err.$fault, "client");
  assert.ok(err.$metadata.requestId, "x-amzn-RequestId reaches err.$metadata.requestId");
  return true;
});

step("every request went to AWS_ENDPOINT_URL (the SDK honours it without an explicit endpoint)");
assert.deepEqual([...sentTo], [process.env.AWS_ENDPOINT_URL.replace(/\/$/, "")]);

console.log("seed 001 (JS SDK v3): all checks passed");
