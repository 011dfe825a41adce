// Seed 001's Next.js lib/secrets.ts snippet, run with node and the real @aws-sdk/client-secrets-manager.
// The endpoint comes from AWS_ENDPOINT_URL, which SDK v3 honours; credentials from the shared file.
import assert from "node:assert/strict";
import {
  SecretsManagerClient,
  GetSecretValueCommand,
  CreateSecretCommand,
} from "@aws-sdk/client-secrets-manager";

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
    console.error(`Failed to retrieve secret ${secretName}:`, error.name);
    throw error;
  }
}

await client.send(new CreateSecretCommand({
  Name: "/prod/frontend/stripe_publishable_key",
  SecretString: JSON.stringify({ key: "pk_test_frontend" }),
}));
const apiKey = await getSecret("/prod/frontend/stripe_publishable_key");
assert.deepEqual(apiKey, { key: "pk_test_frontend" });

await assert.rejects(getSecret("/prod/frontend/missing"), (err) => {
  assert.equal(err.name, "ResourceNotFoundException");
  assert.equal(err.$metadata.httpStatusCode, 400);
  return true;
});

console.log("seed 001 (JS SDK v3): all checks passed");
