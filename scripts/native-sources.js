#!/usr/bin/env node
// Prints the C++ sources of the CPU-only addon for binding.gyp, the same set
// CMakeLists.txt globs, so the two builds cannot drift apart.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const dirs = ['csrc/core', 'csrc/cpu', 'csrc/napi'];
const files = dirs.flatMap((d) =>
  fs.readdirSync(path.join(root, d)).filter((f) => f.endsWith('.cpp')).sort().map((f) => `${d}/${f}`));
// Host code driving the CUDA kernels (links against the stubs here).
files.push(...fs.readdirSync(path.join(root, 'csrc/cuda')).filter((f) => f.endsWith('_host.cpp')).sort().map((f) => `csrc/cuda/${f}`));
files.push('csrc/cuda/cuda_stub.cpp');
process.stdout.write(files.join(' ') + '\n');
