// The standard flows of LangChain's and LlamaIndex's Qdrant vector stores
// against a running qvec, with deterministic fake embeddings (bag of words
// hashed into 32 dimensions). Usage: node frameworks.mjs http://127.0.0.1:PORT
// Prints "all checks passed" and exits 0, or names the first failed check.
import assert from "node:assert/strict";

import { Embeddings } from "@langchain/core/embeddings";
import { Document as LcDocument } from "@langchain/core/documents";
import { QdrantVectorStore as LangChainStore } from "@langchain/qdrant";
import { QdrantVectorStore as LlamaStore } from "@llamaindex/qdrant";
import { NodeRelationship, TextNode } from "@llamaindex/core/schema";
import { FilterCondition, FilterOperator, VectorStoreQueryMode } from "@llamaindex/core/vector-store";
import { QdrantClient } from "@qdrant/js-client-rest";

const url = process.argv[2];
if (!url) throw new Error("usage: node frameworks.mjs URL");

const DIM = 32;
function embed(text) {
  const v = new Array(DIM).fill(0);
  for (const word of text.toLowerCase().split(/\W+/).filter(Boolean)) {
    let h = 2166136261;
    for (const c of word) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    v[h % DIM] += 1;
  }
  v[DIM - 1] += 0.01;  // never the zero vector
  return v;
}

class FakeEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  async embedDocuments(texts) {
    return texts.map(embed);
  }
  async embedQuery(text) {
    return embed(text);
  }
}

const texts = [
  "the quick brown fox jumps over the lazy dog",
  "a quick brown fox runs in the forest",
  "the quick brown fox sleeps",
  "stock markets fell sharply today",
  "the central bank raised interest rates",
  "a recipe for sourdough bread with a crisp crust",
];
const metadatas = texts.map((_, i) => ({ source: i < 3 ? "animals" : i < 5 ? "finance" : "food", n: i }));

async function check(name, fn) {
  try {
    await fn();
  } catch (e) {
    console.log(`FAILED: ${name}: ${e?.stack ?? e}`);
    if (e?.data) console.log(JSON.stringify(e.data));
    process.exit(1);
  }
}

const client = new QdrantClient({ url, checkCompatibility: false });

// ---- LangChain ----
let lc;
await check("langchain fromTexts", async () => {
  lc = await LangChainStore.fromTexts(texts, metadatas, new FakeEmbeddings(), {
    url,
    collectionName: "langchain",
  });
  const info = await client.getCollection("langchain");
  assert.equal(info.points_count, texts.length);
});
await check("langchain similaritySearch", async () => {
  const docs = await lc.similaritySearch("quick brown fox jumps", 2);
  assert.equal(docs.length, 2);
  assert.equal(docs[0].pageContent, texts[0]);
  assert.equal(docs[0].metadata.source, "animals");
});
await check("langchain similaritySearchWithScore + metadata filter", async () => {
  const results = await lc.similaritySearchWithScore("the", 10, {
    must: [{ key: "metadata.source", match: { value: "finance" } }],
  });
  assert.equal(results.length, 2);
  for (const [doc, score] of results) {
    assert.equal(doc.metadata.source, "finance");
    assert.equal(typeof score, "number");
  }
  const ranged = await lc.similaritySearch("fox", 10, { must: [{ key: "metadata.n", range: { gte: 1, lt: 3 } }] });
  assert.deepEqual(ranged.map((d) => d.metadata.n).sort(), [1, 2]);
});
await check("langchain maxMarginalRelevanceSearch", async () => {
  const plain = await lc.similaritySearch("quick brown fox", 3);
  assert.deepEqual(plain.map((d) => d.metadata.source), ["animals", "animals", "animals"]);
  const diverse = await lc.maxMarginalRelevanceSearch("quick brown fox", { k: 3, fetchK: 6, lambda: 0.9 });
  assert.equal(diverse.length, 3);
  assert.equal(diverse[0].metadata.n, plain[0].metadata.n);
  assert.ok(diverse.some((d) => d.metadata.source !== "animals"), "MMR must diversify");
});
await check("langchain addDocuments with ids, delete by ids and by filter", async () => {
  const ids = ["0a8f1f5e-7d1b-4c3a-9a57-5b4b1e2f3c4d", "1b9e2a6f-8e2c-4d4b-8b68-6c5c2f3a4d5e"];
  await lc.addDocuments(
    [new LcDocument({ pageContent: "extra one", metadata: { source: "extra" } }),
     new LcDocument({ pageContent: "extra two", metadata: { source: "extra" } })],
    { ids });
  assert.equal((await client.count("langchain")).count, texts.length + 2);
  await lc.delete({ ids: [ids[0]] });
  assert.equal((await client.count("langchain")).count, texts.length + 1);
  await lc.delete({ filter: { must: [{ key: "metadata.source", match: { value: "extra" } }] } });
  assert.equal((await client.count("langchain")).count, texts.length);
});
await check("langchain fromExistingCollection", async () => {
  const again = await LangChainStore.fromExistingCollection(new FakeEmbeddings(), { url, collectionName: "langchain" });
  const docs = await again.similaritySearch("interest rates", 1);
  assert.equal(docs[0].pageContent, texts[4]);
});

// ---- LlamaIndex ----
// Embeddings are given with the nodes and queries; the store only needs a model object.
const li = new LlamaStore({ url, collectionName: "llamaindex", embeddingModel: {} });
const nodes = texts.map((text, i) => {
  const node = new TextNode({
    text,
    metadata: { author: i % 2 ? "bob" : "alice", year: 2020 + i, topic: metadatas[i].source },
    relationships: { [NodeRelationship.SOURCE]: { nodeId: `doc-${i < 3 ? "a" : "b"}` } },
  });
  node.embedding = embed(text);
  return node;
});
const query = (text, extra = {}) =>
  li.query({ queryEmbedding: embed(text), similarityTopK: 10, mode: VectorStoreQueryMode.DEFAULT, ...extra });
const filters = (list, condition = FilterCondition.AND) => ({ filters: { filters: list, condition } });

await check("llamaindex add", async () => {
  const ids = await li.add(nodes);
  assert.equal(ids.length, texts.length);
  assert.equal((await client.count("llamaindex")).count, texts.length);
});
await check("llamaindex query", async () => {
  const r = await query("sourdough bread recipe", { similarityTopK: 2 });
  assert.equal(r.nodes.length, 2);
  assert.equal(r.nodes[0].getContent(), texts[5]);
  assert.ok(r.similarities[0] >= r.similarities[1]);
});
await check("llamaindex metadata filters", async () => {
  let r = await query("fox", filters([{ key: "author", value: "alice", operator: FilterOperator.EQ }]));
  assert.equal(r.nodes.length, 3);
  r = await query("fox", filters([{ key: "year", value: 2022, operator: FilterOperator.EQ }]));
  assert.deepEqual(r.nodes.map((n) => n.metadata.year), [2022]);
  r = await query("fox", filters([{ key: "year", value: 2023, operator: FilterOperator.GT }]));
  assert.equal(r.nodes.length, 2);
  r = await query("fox", filters([{ key: "year", value: 2021, operator: FilterOperator.LTE }]));
  assert.equal(r.nodes.length, 2);
  r = await query("fox", filters([{ key: "topic", value: ["finance", "food"], operator: FilterOperator.IN }]));
  assert.equal(r.nodes.length, 3);
  r = await query("fox", filters([{ key: "topic", value: ["animals"], operator: FilterOperator.NIN }]));
  assert.equal(r.nodes.length, 3);
  r = await query("fox", filters([{ key: "author", value: "bob", operator: FilterOperator.NE }]));
  assert.equal(r.nodes.length, 3);
  r = await query("fox", filters([{ key: "missing", value: null, operator: FilterOperator.IS_EMPTY }]));
  assert.equal(r.nodes.length, texts.length);
  r = await query("fox", filters([
    { key: "topic", value: "food", operator: FilterOperator.EQ },
    { key: "topic", value: "finance", operator: FilterOperator.EQ }], FilterCondition.OR));
  assert.equal(r.nodes.length, 3);
});
await check("llamaindex TEXT_MATCH", async () => {
  const r = await query("anything", filters([{ key: "topic", value: "anim", operator: FilterOperator.TEXT_MATCH }]));
  assert.equal(r.nodes.length, 3);
  for (const n of r.nodes) assert.equal(n.metadata.topic, "animals");
});
await check("llamaindex delete by ref doc", async () => {
  await li.delete("doc-a");
  assert.equal((await client.count("llamaindex")).count, 3);
  const r = await query("quick brown fox");
  for (const n of r.nodes) assert.notEqual(n.metadata.topic, "animals");
});

console.log("all checks passed");
