// Seed 003's KMS envelope encryption (a fresh 256-bit data key per secret, AES-256-GCM, the data key kept
// only in encrypted form) with the master key held by Coffer's KMS instead of in the application:
// @aws-sdk/client-kms GenerateDataKey / Decrypt against Coffer (endpoint from AWS_ENDPOINT_URL), the
// secret encrypted locally with node's crypto, as the seed's KMSEnvelopeEncryption class does.
import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  KMSClient, CreateKeyCommand, CreateAliasCommand, GenerateDataKeyCommand, DecryptCommand,
  DescribeKeyCommand, DisableKeyCommand, EnableKeyCommand, EncryptCommand,
} from "@aws-sdk/client-kms";

const kms = new KMSClient({ region: "us-east-1" });

class KMSEnvelopeEncryption {
  constructor(keyId, context) {
    this.keyId = keyId;
    this.context = context;
  }

  async encryptSecret(plaintext) {
    const dk = await kms.send(new GenerateDataKeyCommand({
      KeyId: this.keyId, KeySpec: "AES_256", EncryptionContext: this.context,
    }));
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(dk.Plaintext), iv);
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    Buffer.from(dk.Plaintext).fill(0); // the data key's plaintext is dropped at once
    return {
      encryptedDataKey: Buffer.from(dk.CiphertextBlob).toString("base64"),
      iv: iv.toString("base64"),
      authTag: cipher.getAuthTag().toString("base64"),
      data: data.toString("base64"),
      keyId: dk.KeyId,
    };
  }

  async decryptSecret(envelope) {
    const dk = await kms.send(new DecryptCommand({
      CiphertextBlob: Buffer.from(envelope.encryptedDataKey, "base64"), EncryptionContext: this.context,
    }));
    const decipher = createDecipheriv("aes-256-gcm", Buffer.from(dk.Plaintext), Buffer.from(envelope.iv, "base64"));
    decipher.setAuthTag(Buffer.from(envelope.authTag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(envelope.data, "base64")), decipher.final()]).toString("utf8");
  }
}

const created = await kms.send(new CreateKeyCommand({ Description: "seed 003 envelope master key" }));
const keyId = created.KeyMetadata.KeyId;
await kms.send(new CreateAliasCommand({ AliasName: "alias/seed003-master", TargetKeyId: keyId }));
const described = await kms.send(new DescribeKeyCommand({ KeyId: "alias/seed003-master" }));
assert.equal(described.KeyMetadata.KeyId, keyId);
assert.equal(described.KeyMetadata.KeyState, "Enabled");

const envelope = new KMSEnvelopeEncryption("alias/seed003-master", { app: "netlify", purpose: "secrets" });
const plaintext = "sk_test_synthetic_value_for_the_envelope_test";
const encrypted = await envelope.encryptSecret(plaintext);
assert.ok(encrypted.keyId.endsWith(keyId), "GenerateDataKey reports the key ARN");
assert.ok(!JSON.stringify(encrypted).includes(plaintext), "the envelope holds no plaintext");
assert.equal(await envelope.decryptSecret(encrypted), plaintext);

// Each secret gets its own data key.
const second = await envelope.encryptSecret(plaintext);
assert.notEqual(second.encryptedDataKey, encrypted.encryptedDataKey);

// The encryption context binds the data key: another context cannot unwrap it.
const other = new KMSEnvelopeEncryption("alias/seed003-master", { app: "netlify", purpose: "other" });
await assert.rejects(other.decryptSecret(encrypted), (err) => {
  assert.equal(err.name, "InvalidCiphertextException");
  return true;
});

// Disabling the master key stops every decryption until it is enabled again.
await kms.send(new DisableKeyCommand({ KeyId: keyId }));
await assert.rejects(envelope.decryptSecret(encrypted), (err) => {
  assert.equal(err.name, "DisabledException");
  return true;
});
await kms.send(new EnableKeyCommand({ KeyId: keyId }));
assert.equal(await envelope.decryptSecret(encrypted), plaintext);

// Direct Encrypt/Decrypt of small values round-trips binary data.
const small = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Uint8Array.from([0, 1, 2, 255]) }));
const back = await kms.send(new DecryptCommand({ CiphertextBlob: small.CiphertextBlob }));
assert.deepEqual(Array.from(back.Plaintext), [0, 1, 2, 255]);

console.log("seed 003 (JS SDK v3, KMS envelope encryption): all checks passed");
