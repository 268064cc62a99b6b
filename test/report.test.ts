// The single-run report: the gate comes first, and a VaLR-vs-SFT comparison is printed
// only when the baseline passed it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArmResult, ExperimentResult } from '../lib/pipeline/experiment';
import { experimentReport, pairedDifference } from '../lib/pipeline/report';
import { gateVerdict } from '../lib/train/image-gate';
import type { EvalResult } from '../lib/train/evaluate';

const test = suite('experiment report');
const blind = { answers: { count: '2' }, accuracy: 0.36, byFamily: { count: 0.5 } };
const ce = { steps: 0.3, answer: 0.2 };

function evalOf(ok: boolean[]): EvalResult {
  const correct = ok.filter(Boolean).length;
  return {
    correct, total: ok.length, accuracy: correct / ok.length, byFamily: { count: { correct, total: ok.length, accuracy: correct / ok.length } },
    byViews: { 2: { correct, total: ok.length, accuracy: correct / ok.length } }, latentSegmentsPerSample: 0, truncated: 0,
    predictions: ok.map((o) => ({ answer: o ? 'a' : 'b', expected: 'a', tokens: 10, truncated: false })),
  };
}

function arm(name: string, policy: ArmResult['policy'], real: boolean[], swapped: boolean[]): ArmResult {
  return { name, policy, eval: evalOf(real), swapped: evalOf(swapped), gate: gateVerdict(real, swapped, ce, ce, blind), trainSeconds: 1, finalLoss: 0.1 };
}

function result(arms: ArmResult[]): ExperimentResult {
  return {
    config: {} as ExperimentResult['config'], dataset: { dir: 'd', train: 10, test: 60 }, perception: { seconds: 1, steps: 10, kindAccuracy: 0.7 },
    stage1: { seconds: 1, finalLoss: 0.2 }, blind, arms, stopped: false,
  };
}

const n = 60;
const sees = Array.from({ length: n }, (_, i) => i % 10 !== 0); // 90% correct
const blindish = Array.from({ length: n }, (_, i) => i % 2 === 0); // 50% correct

test('a baseline that fails the gate: no comparison is printed', () => {
  const md = experimentReport(result([arm('vanilla-sft', 'off', blindish, blindish), arm('valr-m', 'auto', sees, blindish)]));
  assert.match(md, /No comparison is drawn/);
  assert.not.match(md, /points \[/);
  assert.match(md, /\| vanilla-sft \| 50\.0% \| 50\.0% \| \+0\.0 \[\+0\.0, \+0\.0\] \| \*\*failed\*\*/);
});

test('a baseline that passes: paired differences with intervals, and the verdict per arm', () => {
  const md = experimentReport(result([arm('vanilla-sft', 'off', blindish.map((x, i) => x || i % 10 === 1), blindish), arm('valr-m', 'auto', sees, blindish)]));
  assert.not.match(md, /No comparison is drawn/, md);
  assert.match(md, /- valr-m: \+[0-9.]+ points \[\+[0-9.]+, \+[0-9.]+\]: better/);
  const d = pairedDifference(arm('x', 'auto', sees, blindish), arm('y', 'off', blindish, blindish));
  assert.ok(Math.abs(d.mean - (sees.filter(Boolean).length - blindish.filter(Boolean).length) / n) < 1e-12);
  assert.ok(d.lo > 0 && d.lo <= d.mean && d.mean <= d.hi);
});

test.run();
