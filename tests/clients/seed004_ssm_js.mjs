// Seed 004's Lambda snippet: getSecret through @aws-sdk/client-ssm GetParameterCommand with
// WithDecryption, for /${ENVIRONMENT}/<name>, run with node against Coffer (endpoint from AWS_ENDPOINT_URL).
import assert from "node:assert/strict";
import { SSMClient, GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";

process.env.ENVIRONMENT = "staging";
const ssm = new SSMClient({ region: "us-east-1" });

async function getSecret(name) {
  const command = new GetParameterCommand({
    Name: `/${process.env.ENVIRONMENT}/${name}`,
    WithDecryption: true,
  });
  const response = await ssm.send(command);
  return response.Parameter?.Value || "";
}

await ssm.send(new PutParameterCommand({ Name: "/staging/supabase/url", Value: "https://db.example.test", Type: "String" }));
await ssm.send(new PutParameterCommand({ Name: "/staging/supabase/service_key", Value: "svc-key-123", Type: "SecureString" }));

assert.equal(await getSecret("supabase/url"), "https://db.example.test");
assert.equal(await getSecret("supabase/service_key"), "svc-key-123");

// Without decryption the SecureString value is not the plaintext.
const hidden = await ssm.send(new GetParameterCommand({ Name: "/staging/supabase/service_key" }));
assert.notEqual(hidden.Parameter.Value, "svc-key-123");
assert.equal(hidden.Parameter.Type, "SecureString");

await assert.rejects(getSecret("missing"), (err) => {
  assert.equal(err.name, "ParameterNotFound");
  return true;
});

console.log("seed 004 (JS SDK v3, SSM): all checks passed");
