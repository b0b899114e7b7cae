#!/usr/bin/env node
// One ONNX Runtime block of tools/bench_peers.py (its docstring has the methodology), in a process of
// its own; prints one JSON object, as that script's Python workers do.
//
//   node tools/ort_worker.js --ort-dir DIR --onnx M.onnx --model-file M.json --threads T --batch B \
//       --iterations N --warmup W --tolerance 1e-4 [--profile PREFIX]
//   node tools/ort_worker.js --ort-dir DIR --info
//
// DIR holds node_modules/onnxruntime-node (bench_peers.py installs it there with npm). The block:
// load the ONNX file into a session (CPU execution provider, every graph optimisation, T intra-op
// threads, 1 inter-op thread, sequential execution); run the recorded inputs of the gapnet file M.json
// and report the largest difference from the outputs PyTorch recorded there (refused above the
// tolerance: then nothing is timed); then W untimed and N timed runs of one forward pass over a batch
// of B random inputs uniform in [-1, 1].
//
// --profile PREFIX: the same block with ONNX Runtime's own profiler on (session option enableProfiling,
// profileFilePrefix PREFIX): it times every node of every run, the check and warm-up runs included,
// and session.endProfiling() writes them as a Chrome trace, PREFIX_<date>_<time>.json. The result then
// also names that file (profile_file) and how many runs it holds before the timed ones (profile_skip_runs);
// tools/bench_peers_ort_profile.py reads it. Profiling slows the runs: such a block is never the timed one.
'use strict';
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument '${argv[i]}'`);
    const name = argv[i].slice(2);
    if (name === 'info') args.info = true;
    else args[name] = argv[++i];
  }
  for (const name of ['threads', 'batch', 'iterations', 'warmup', 'tolerance']) {
    if (name in args) args[name] = Number(args[name]);
  }
  return args;
}

function loadOrt(dir) {
  const where = path.join(dir, 'node_modules', 'onnxruntime-node');
  if (!fs.existsSync(where)) throw new Error(`no onnxruntime-node in ${dir} (tools/bench_peers.py installs it)`);
  return {ort: require(where), version: require(path.join(where, 'package.json')).version};
}

// A gapnet JSON tensor (base64 little-endian float32, or a number array) -> Float32Array.
function decodeTensor(t) {
  if (t.encoding !== 'base64') return Float32Array.from(t.data.flat(Infinity));
  const bytes = Buffer.from(t.data, 'base64');
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = bytes.readFloatLE(4 * i);
  return values;
}

// The recorded cases of a gapnet file, stacked: inputs [N, C, H, W] and PyTorch's outputs.
function referenceCases(doc) {
  const tests = doc.tests || [];
  if (!tests.length) throw new Error(`model '${doc.name}' records no tests to check the engine against`);
  const stack = (key) => {
    const parts = tests.map((t) => decodeTensor(t[key]));
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((offset, p) => (all.set(p, offset), offset + p.length), 0);
    return all;
  };
  return {count: tests.length, shape: tests[0].input.shape, inputs: stack('input'), outputs: stack('output')};
}

async function timeRuns(run, feeds, warmup, iterations) {
  for (let i = 0; i < warmup; i++) await run(feeds);
  const latencies = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await run(feeds);
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return latencies;
}

async function block(args) {
  const {ort} = loadOrt(args['ort-dir']);
  const doc = JSON.parse(fs.readFileSync(args['model-file'], 'utf8'));
  const cases = referenceCases(doc);
  const options = {executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: args.threads,
                   interOpNumThreads: 1, executionMode: 'sequential'};
  if (args.profile) Object.assign(options, {enableProfiling: true, profileFilePrefix: args.profile});
  const session = await ort.InferenceSession.create(args.onnx, options);
  const [input] = session.inputNames;
  const [output] = session.outputNames;
  const run = async (feeds) => (await session.run(feeds))[output].data;
  const tensor = (values, batch) => ({[input]: new ort.Tensor('float32', values, [batch, ...cases.shape])});

  const got = await run(tensor(cases.inputs, cases.count));
  let difference = got.length === cases.outputs.length ? 0 : NaN;  // Math.max keeps a NaN
  for (let i = 0; i < got.length; i++) difference = Math.max(difference, Math.abs(got[i] - cases.outputs[i]));
  const result = {engine: 'onnxruntime', threads: args.threads, batch: args.batch,
                  max_difference: Number.isNaN(difference) ? null : difference};
  if (!(difference <= args.tolerance)) {
    result.refused = `outputs differ from PyTorch's recorded ones by ${Number.isNaN(difference) ? 'NaN' :
      difference.toPrecision(3)} > ${args.tolerance}`;
  } else {
    const size = args.batch * cases.shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({length: size}, () => 2 * Math.random() - 1);
    result.latencies_ms = await timeRuns(run, tensor(x, args.batch), args.warmup, args.iterations);
  }
  if (args.profile) {
    // endProfiling returns no file name from Node.js: the file is the one new PREFIX_*.json.
    await session.endProfiling();
    const dir = path.dirname(args.profile);
    const base = path.basename(args.profile) + '_';
    const written = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'));
    if (written.length !== 1) throw new Error(`expected one profile ${args.profile}_*.json, found ${written.length}`);
    result.profile_file = path.join(dir, written[0]);
    result.profile_skip_runs = 1 + args.warmup;  // the check run and the warm-up runs
  }
  result.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
  return result;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.info) {
    const {version} = loadOrt(args['ort-dir']);
    return {onnxruntime: version, node: process.version};
  }
  return block(args);
}

main().then((result) => console.log(JSON.stringify(result)), (e) => {
  console.error(`ort_worker: error: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
