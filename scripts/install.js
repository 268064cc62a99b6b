#!/usr/bin/env node
// `npm install` hook. A shipped prebuilt binary that loads means there is nothing
// to do (and with npm's default of blocking dependency scripts this never runs at
// all: the loader finds the prebuilds by itself). Otherwise build from source:
// cmake-js (CPU addon, plus the CUDA addon when nvcc is found), or node-gyp with
// binding.gyp (CPU addon) where CMake or cmake-js is missing.
// VALR_BUILD_FROM_SOURCE=1 skips the prebuilt check.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function prebuiltLoads() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return false;
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args) {
  console.log(`valr-node: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

function have(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' }).status === 0;
}

if (!process.env.VALR_BUILD_FROM_SOURCE && prebuiltLoads()) {
  process.exit(0);
}

const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
if (fs.existsSync(cmakeJs) && have('cmake')) {
  // Local builds may use this machine's full instruction set; prebuilds never do.
  const cuda = process.env.VALR_CUDA || 'AUTO';
  if (run(process.execPath, [cmakeJs, 'build', `--CDVALR_CUDA=${cuda}`, '--CDVALR_NATIVE_ARCH=ON'])) process.exit(0);
  console.warn('valr-node: the CMake build failed; trying node-gyp (CPU only)');
}
const gyp = process.env.npm_config_node_gyp;
const ok = gyp ? run(process.execPath, [gyp, 'rebuild']) : run('node-gyp', ['rebuild']);
if (!ok) {
  console.error(
    'valr-node: could not build the native addon. Install CMake (or Python for node-gyp) and a C++17 compiler, ' +
      'then run `npm rebuild valr-node`.',
  );
  process.exit(1);
}
