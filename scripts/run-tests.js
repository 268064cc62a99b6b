#!/usr/bin/env node
// Runs the uvu suites under tsx and ends with the plain line CI reads:
// "N passed, N failed" (uvu itself prints only Total/Passed/Skipped).
'use strict';
const { spawn } = require('child_process');
const path = require('path');


const dir = process.argv[2] || 'test';
const pattern = process.argv[3] || '\\.test\\.ts$';
// The packaging test needs prebuilt binaries: it runs on its own (npm run test:package).
const ignore = dir === 'test' ? ['-i', 'package'] : [];
const uvu = path.join(__dirname, '..', 'node_modules', 'uvu', 'bin.js');
const child = spawn(process.execPath, ['--import', 'tsx', uvu, dir, pattern, ...ignore], {
  cwd: path.join(__dirname, '..'),
  stdio: ['inherit', 'pipe', 'inherit'],
  env: process.env,
});
let out = '';
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  out += b.toString();
});
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => {
    const m = plain.match(new RegExp(`${label}:\\s+(\\d+)`));
    return m ? Number(m[1]) : 0;
  };
  const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
  // A suite that crashed before uvu's summary counts as a failure.
  const failed = Math.max(total - passed - skipped, code !== 0 && total === passed ? 1 : 0);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
