/**
 * The one door to Cedar's WebAssembly (its Node entry: the package's default entry does not load
 * in Node 20).
 *
 * V8 11.3 (Node 20) inlines calls from optimized JavaScript into WebAssembly; when such code is
 * deoptimized while the call returns (Cedar's calls return objects), V8 can abort the whole
 * process ("Fatal error: unreachable code" in Deoptimizer::DoComputeBuiltinContinuation). The
 * policy tests hit it in about one run in four. Turning that inlining off avoids it (no crash in
 * dozens of runs since) for a negligible cost per call. The flag is read when V8 optimizes a
 * function, so setting it here, before any decision is made, is in time.
 */
import { setFlagsFromString } from 'node:v8';
import * as cedarWasm from '@cedar-policy/cedar-wasm/nodejs';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export const cedar = cedarWasm;
