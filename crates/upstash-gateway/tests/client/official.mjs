// The official @upstash/redis client against the gateway: UPSTASH_REDIS_REST_URL and
// UPSTASH_REDIS_REST_TOKEN name it, PREFIX is this run's key prefix. Exits non-zero on the
// first failed check, printing it.
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";

const url = process.env.UPSTASH_REDIS_REST_URL;
const token = process.env.UPSTASH_REDIS_REST_TOKEN;
const p = process.env.PREFIX;
assert.ok(url && token && p, "UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and PREFIX");

const redis = new Redis({ url, token, retry: false, enableTelemetry: false });
const raw = new Redis({ url, token, retry: false, automaticDeserialization: false, enableTelemetry: false });

// Strings, and JSON values the client serializes itself.
assert.equal(await redis.set(`${p}:s`, "héllo wörld ✓"), "OK");
assert.equal(await raw.get(`${p}:s`), "héllo wörld ✓");
await redis.set(`${p}:json`, { a: [1, 2], b: null });
assert.deepEqual(await redis.get(`${p}:json`), { a: [1, 2], b: null });
assert.equal(await redis.get(`${p}:missing`), null);

// Binary values: the client can only write text, so a Lua script writes every byte value;
// the answer carries them base64-encoded, exactly, and the client decodes that answer.
const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
const script =
  "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end " +
  "return redis.call('SET', KEYS[1], table.concat(t))";
assert.equal(await raw.eval(script, [`${p}:bin`], []), "OK");
assert.equal(await raw.strlen(`${p}:bin`), 256);
assert.equal(await raw.get(`${p}:bin`), new TextDecoder().decode(bytes));
const answer = await fetch(url, {
  method: "POST",
  headers: { Authorization: `Bearer ${token}`, "Upstash-Encoding": "base64" },
  body: JSON.stringify(["GET", `${p}:bin`]),
});
assert.deepEqual(await answer.json(), { result: Buffer.from(bytes).toString("base64") });

// mget, with a missing key among them.
await redis.mset({ [`${p}:m1`]: "one", [`${p}:m2`]: "two" });
assert.deepEqual(await raw.mget(`${p}:m1`, `${p}:nope`, `${p}:m2`), ["one", null, "two"]);

// Pipelines: results in order, an error in one command does not stop the others.
const pipe = redis.pipeline();
pipe.set(`${p}:pc`, 10);
pipe.incr(`${p}:pc`);
pipe.get(`${p}:pc`);
assert.deepEqual(await pipe.exec(), ["OK", 11, 11]);
const faulty = raw.pipeline();
faulty.set(`${p}:pl`, "list?");
faulty.lpush(`${p}:pl`, "x");
faulty.get(`${p}:pl`);
const kept = await faulty.exec({ keepErrors: true });
assert.equal(kept[0].result, "OK");
assert.match(kept[1].error, /WRONGTYPE/);
assert.equal(kept[2].result, "list?");

// Transactions.
const tx = redis.multi();
tx.set(`${p}:tx`, 1);
tx.incrby(`${p}:tx`, 41);
tx.get(`${p}:tx`);
assert.deepEqual(await tx.exec(), ["OK", 42, 42]);

// Scan, with a pattern, until the cursor comes back to 0.
for (let i = 0; i < 25; i++) await redis.set(`${p}:scan:${i}`, i);
let cursor = "0";
const found = new Set();
do {
  const [next, keys] = await redis.scan(cursor, { match: `${p}:scan:*`, count: 10 });
  keys.forEach((k) => found.add(k));
  cursor = String(next);
} while (cursor !== "0");
assert.equal(found.size, 25);

// Expiry.
await redis.set(`${p}:ttl`, "soon", { px: 150 });
const pttl = await redis.pttl(`${p}:ttl`);
assert.ok(pttl > 0 && pttl <= 150, `pttl ${pttl}`);
await redis.expire(`${p}:s`, 100);
assert.ok((await redis.ttl(`${p}:s`)) > 90);
await new Promise((r) => setTimeout(r, 300));
assert.equal(await redis.get(`${p}:ttl`), null);
assert.equal(await redis.exists(`${p}:ttl`), 0);

// Errors: a command Redis refuses, and a wrong token.
await assert.rejects(redis.incr(`${p}:s`), /not an integer/);
const intruder = new Redis({ url, token: `${token}x`, retry: false, enableTelemetry: false });
await assert.rejects(intruder.get(`${p}:s`), /Unauthorized/);

// Clean up what this run wrote.
const mine = [];
cursor = "0";
do {
  const [next, keys] = await redis.scan(cursor, { match: `${p}:*`, count: 100 });
  mine.push(...keys);
  cursor = String(next);
} while (cursor !== "0");
if (mine.length) await redis.del(...mine);
console.log("ok: the official client agrees with the gateway");
