// Runs exported models in ONNX Runtime (CPU, onnxruntime-node pinned by package-lock.json).
//
//   node runner.mjs --model DIR/model.onnx [--input FEEDS.json] [--threads N] [--warmup N] [--repeat N]
//       loads the model, runs it on the feeds (default: zeros of each input's shape, dynamic
//       dimensions 1) and prints one JSON object: inputs, outputs (names, types, dims, values)
//       and latency (median and every timed run, in ms).
//   node runner.mjs --serve
//       a process that stays warm: one JSON request per stdin line, one JSON reply per stdout line
//       (worker/runtime/ort_session.h is its C++ client; the protocol is documented there).
//
// FEEDS.json: {"input_ids": {"type": "int64", "dims": [1, 8], "values": [101, ...]}, ...}.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';

const ARRAYS = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  int8: Int8Array,
  bool: Uint8Array,
};

// A tensor from {type, dims, values} (JSON numbers) or {type, dims, data} (base64, little-endian).
function toTensor(name, spec) {
  const Array_ = ARRAYS[spec.type];
  if (!Array_) throw new Error(`input ${name}: unsupported type "${spec.type}"`);
  let data;
  if (spec.data !== undefined) {
    const bytes = Buffer.from(spec.data, 'base64');
    data = new Array_(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } else {
    const values = spec.values ?? [];
    data = Array_ === BigInt64Array ? BigInt64Array.from(values.map((v) => BigInt(v))) : Array_.from(values);
  }
  const count = spec.dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`input ${name}: ${data.length} values for dims [${spec.dims}] (${count} expected)`);
  }
  return new ort.Tensor(spec.type, data, spec.dims);
}

// A tensor as {type, dims, data (base64)} or, when `asValues`, {type, dims, values}.
function fromTensor(tensor, asValues) {
  const out = { type: tensor.type, dims: Array.from(tensor.dims) };
  if (asValues) {
    out.values = tensor.type === 'int64' ? Array.from(tensor.data, (v) => Number(v)) : Array.from(tensor.data);
  } else {
    const d = tensor.data;
    out.data = Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64');
  }
  return out;
}

function sessionOptions(threads) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Runs `session` on `feeds` warmup + repeat times; the outputs of the last run and the timed runs' ms.
async function timedRun(session, feeds, warmup, repeat, fetches) {
  let outputs;
  for (let i = 0; i < warmup; i++) outputs = await session.run(feeds, fetches);
  const ms = [];
  for (let i = 0; i < Math.max(repeat, 1); i++) {
    const start = process.hrtime.bigint();
    outputs = await session.run(feeds, fetches);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { outputs, ms };
}

function describe(session) {
  return { inputs: session.inputNames, outputs: session.outputNames };
}

// --serve: requests {"id", "op": "load" | "run" | "unload", ...}; replies {"id", "ok", ...} or
// {"id", "ok": false, "error"}. Sessions are numbered from 1 and kept until unloaded.
async function serve() {
  const sessions = new Map();
  let next = 1;
  const handle = async (request) => {
    switch (request.op) {
      case 'load': {
        const session = await ort.InferenceSession.create(request.model, sessionOptions(request.threads ?? 1));
        const id = next++;
        sessions.set(id, session);
        return { session: id, ...describe(session) };
      }
      case 'run': {
        const session = sessions.get(request.session);
        if (!session) throw new Error(`no session ${request.session}`);
        const feeds = {};
        for (const [name, spec] of Object.entries(request.inputs ?? {})) feeds[name] = toTensor(name, spec);
        const fetches = request.outputs && request.outputs.length ? request.outputs : undefined;
        const { outputs, ms } = await timedRun(session, feeds, request.warmup ?? 0, request.repeat ?? 1, fetches);
        const reply = { latency_ms: ms };
        if (request.return !== false) {
          reply.outputs = {};
          for (const [name, tensor] of Object.entries(outputs)) reply.outputs[name] = fromTensor(tensor, false);
        }
        return reply;
      }
      case 'time': {
        // Several sessions timed in alternating passes (a, b, a, b, ...) after each warms up, so
        // that a change of load slows all alike: {"runs": [{"session", "inputs"}, ...]}.
        const runs = (request.runs ?? []).map((run) => {
          const session = sessions.get(run.session);
          if (!session) throw new Error(`no session ${run.session}`);
          const feeds = {};
          for (const [name, spec] of Object.entries(run.inputs ?? {})) feeds[name] = toTensor(name, spec);
          return { session, feeds };
        });
        for (const run of runs) {
          for (let i = 0; i < (request.warmup ?? 0); i++) await run.session.run(run.feeds);
        }
        const ms = runs.map(() => []);
        for (let i = 0; i < Math.max(request.repeat ?? 1, 1); i++) {
          for (let r = 0; r < runs.length; r++) {
            const start = process.hrtime.bigint();
            await runs[r].session.run(runs[r].feeds);
            ms[r].push(Number(process.hrtime.bigint() - start) / 1e6);
          }
        }
        return { latency_ms: ms };
      }
      case 'unload': {
        const session = sessions.get(request.session);
        if (session) await session.release();
        sessions.delete(request.session);
        return {};
      }
      default:
        throw new Error(`unknown op "${request.op}"`);
    }
  };
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request = {};
    let reply;
    try {
      request = JSON.parse(line);
      reply = { id: request.id, ok: true, ...(await handle(request)) };
    } catch (error) {
      reply = { id: request.id, ok: false, error: String(error && error.message ? error.message : error) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
}

function parseArgs(argv) {
  const args = { threads: 1, warmup: 2, repeat: 10 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--serve') args.serve = true;
    else if (flag === '--model') args.model = value();
    else if (flag === '--input') args.input = value();
    else if (flag === '--threads') args.threads = Number(value());
    else if (flag === '--warmup') args.warmup = Number(value());
    else if (flag === '--repeat') args.repeat = Number(value());
    else if (flag === '--help' || flag === '-h') args.help = true;
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

const USAGE = `usage: node runner.mjs --model MODEL.onnx [--input FEEDS.json] [--threads N] [--warmup N] [--repeat N]
       node runner.mjs --serve`;

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`runner: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  if (args.serve) return serve();
  if (!args.model) {
    console.error(`runner: --model is required\n${USAGE}`);
    process.exit(2);
  }
  try {
    const session = await ort.InferenceSession.create(args.model, sessionOptions(args.threads));
    const specs = args.input ? JSON.parse(readFileSync(args.input, 'utf8')) : {};
    const feeds = {};
    for (const name of session.inputNames) {
      let spec = specs[name];
      if (!spec) {
        const meta = session.inputMetadata.find((m) => m.name === name);
        const dims = (meta?.shape ?? [1]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
        spec = { type: meta?.type ?? 'float32', dims, values: new Array(dims.reduce((a, b) => a * b, 1)).fill(0) };
      }
      feeds[name] = toTensor(name, spec);
    }
    const { outputs, ms } = await timedRun(session, feeds, args.warmup, args.repeat);
    const result = { model: args.model, threads: args.threads, ...describe(session), outputs: {} };
    for (const [name, tensor] of Object.entries(outputs)) result.outputs[name] = fromTensor(tensor, true);
    result.latency_ms = { median: median(ms), runs: ms };
    console.log(JSON.stringify(result));
  } catch (error) {
    console.error(`runner: ${args.model}: ${error.message}`);
    process.exit(1);
  }
}

main();
