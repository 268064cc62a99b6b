#!/usr/bin/env node
// `npm run prebuild`: the binaries `npm pack` ships, in the layout lib/native/loader.ts reads:
//   prebuilds/<platform>-<arch>/valr-node[.glibc].node        CPU (prebuildify + node-gyp)
//   prebuilds/<platform>-<arch>/cuda/valr-node[.glibc].node   CPU + CUDA (cmake-js)
// Both are built for a generic CPU (no -march=native). The CUDA one is skipped
// when nvcc is not found (VALR_CUDA=ON makes that an error).
// prebuildify runs `node-gyp rebuild`, which replaces build/; run `npm run build:native`
// afterwards to get the local CUDA build back.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const libcTag = process.platform === 'linux' ? (isMusl() ? '.musl' : '.glibc') : '';
const fileName = `valr-node${libcTag}.node`;  // the name prebuildify gives the CPU binary

function isMusl() {
  const report = process.report && process.report.getReport ? process.report.getReport() : null;
  return !!report && !report.header.glibcVersionRuntime;
}

function run(cmd, args) {
  console.log(`prebuild: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
}

const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const cuda = process.env.VALR_CUDA || 'AUTO';
run(process.execPath, [cmakeJs, 'build', `--CDVALR_CUDA=${cuda}`, '--CDVALR_NATIVE_ARCH=OFF']);
const cudaOut = path.join(root, 'build', 'Release', 'cuda', 'valr.node');
const cudaDir = path.join(root, 'prebuilds', platformDir, 'cuda');
fs.rmSync(cudaDir, { recursive: true, force: true });
if (fs.existsSync(cudaOut)) {
  fs.mkdirSync(cudaDir, { recursive: true });
  fs.copyFileSync(cudaOut, path.join(cudaDir, fileName));
  if (process.platform === 'linux') spawnSync('strip', ['--strip-unneeded', path.join(cudaDir, fileName)]);
  console.log(`prebuild: CUDA binary -> prebuilds/${platformDir}/cuda/${fileName}`);
} else {
  console.log('prebuild: no CUDA build (nvcc not found); shipping the CPU binary only');
}

const prebuildify = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
const args = [prebuildify, '--napi', '--strip', '--name', 'valr-node'];
if (libcTag) args.push('--tag-libc');
run(process.execPath, args);
console.log(`prebuild: done: ${fs.readdirSync(path.join(root, 'prebuilds', platformDir)).join(', ')}`);
