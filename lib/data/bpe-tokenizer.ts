// Byte-level BPE tokenizers loaded from Hugging Face tokenizer.json files (the layout used
// by GPT-2, RoBERTa, Llama 3 and Qwen2 checkpoints). Encodings equal the Python
// `tokenizers` library's (test/data-bpe.test.ts checks them against its output).
//
// The pipeline, as in the Rust library:
//   1. added tokens: special and other added tokens written in the text are cut out first,
//      leftmost match first and the longest at a position (single_word / lstrip / rstrip
//      honoured); tokens with normalized: true are matched after the normalizer;
//   2. normalizer: none, NFC, NFD, NFKC, NFKD (or a Sequence of them);
//   3. pre-tokenizer: ByteLevel (add_prefix_space, use_regex with the GPT-2 regex), Split
//      (a regex or a literal string; every behaviour; invert), Digits, or a Sequence of
//      them; Oniguruma regexes are translated to JavaScript RegExps with the 'u' flag (see
//      translateOnigRegex); one that cannot be translated is refused when the file loads;
//   4. model: BPE over the bytes-as-characters of each piece, merges applied by rank (the
//      lowest rank first, leftmost on ties), with a word cache and ignore_merges;
//   5. post-processor (only when addSpecialTokens): ByteLevel (no ids), TemplateProcessing
//      (single-sequence template), RobertaProcessing / BertProcessing (cls A sep), Sequence;
//   6. decoder: ByteLevel (tokens back to bytes, then UTF-8 with U+FFFD for bad sequences).
// Anything else (Unigram / WordPiece models, Metaspace, Lowercase, byte_fallback, dropout...)
// is refused with a ValrError naming the component. truncation / padding are ignored.
import * as fs from 'fs';
import { ValrError } from '../errors';

type Json = Record<string, unknown>;

export interface BpeEncodeOptions {
  /** Add the post-processor's tokens (e.g. Llama 3's <|begin_of_text|>). Default true, as in `tokenizers`. */
  addSpecialTokens?: boolean;
}

export interface BpeDecodeOptions {
  /** Leave out the special added tokens (added_tokens with "special": true). Default false. */
  skipSpecialTokens?: boolean;
}

export interface BpeAddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

function arg(message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', message);
}

// ---------------------------------------------------------------------------------------
// Bytes <-> characters (GPT-2's bytes_to_unicode): printable Latin-1 bytes stand for
// themselves, the other 68 bytes for U+0100.. in byte order.

const BYTE_CHAR: string[] = new Array(256);
const CHAR_BYTE = new Int16Array(0x144).fill(-1);
{
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const code = printable ? b : 0x100 + extra++;
    BYTE_CHAR[b] = String.fromCharCode(code);
    CHAR_BYTE[code] = b;
  }
}

/** The UTF-8 bytes of `s` written as byte-level characters (lone surrogates as U+FFFD). */
function toByteLevel(s: string): string {
  let out = '';
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out += BYTE_CHAR[c];
    } else if (c < 0x800) {
      out += BYTE_CHAR[0xc0 | (c >> 6)] + BYTE_CHAR[0x80 | (c & 0x3f)];
    } else {
      if (c >= 0xd800 && c < 0xe000) {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          out += BYTE_CHAR[0xf0 | (cp >> 18)] + BYTE_CHAR[0x80 | ((cp >> 12) & 0x3f)] + BYTE_CHAR[0x80 | ((cp >> 6) & 0x3f)] + BYTE_CHAR[0x80 | (cp & 0x3f)];
          continue;
        }
        c = 0xfffd;
      }
      out += BYTE_CHAR[0xe0 | (c >> 12)] + BYTE_CHAR[0x80 | ((c >> 6) & 0x3f)] + BYTE_CHAR[0x80 | (c & 0x3f)];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Oniguruma -> JavaScript regexes. `tokenizers` compiles Split / ByteLevel patterns with
// Oniguruma (Unicode, no options), whose classes differ from JavaScript's: \s is the
// White_Space property (JS adds U+FEFF and lacks U+0085), \d is \p{Nd}, \w is Unicode,
// '.' excludes only \n, ^ / $ are line anchors at \n only, (?i:...) is a scoped flag
// (JavaScript in Node 20 has no modifiers: letters become classes of their case variants).

// Oniguruma's \w: UTS #18 word characters plus six Latin-1 numerals (its Latin-1 table)
const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}\\u00b2\\u00b3\\u00b9\\u00bc-\\u00be';
// the Rust regex crate's \w (single_word added tokens)
const RUST_WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''));

let casedChars: string[] | undefined;
const caseVariantCache = new Map<string, string[]>();
/** Characters equal to `ch` under Unicode simple case folding (what (?i) matches). */
function caseVariants(ch: string): string[] {
  let hit = caseVariantCache.get(ch);
  if (hit) return hit;
  if (!casedChars) {
    casedChars = [];
    for (let cp = 0; cp < 0x20000; cp++) {
      if (cp >= 0xd800 && cp < 0xe000) continue;
      const s = String.fromCodePoint(cp);
      if (s.toLowerCase() !== s || s.toUpperCase() !== s) casedChars.push(s);
    }
  }
  hit = [ch];
  const re = new RegExp(`^${classLiteral(ch)}$`, 'iu');
  for (const s of casedChars) if (s !== ch && re.test(s)) hit.push(s);
  caseVariantCache.set(ch, hit);
  return hit;
}

function classLiteral(ch: string): string {
  return ch === '\\' || ch === ']' || ch === '[' || ch === '-' || ch === '^' ? '\\' + ch : ch;
}

function literal(ch: string): string {
  return JS_SYNTAX.has(ch) ? '\\' + ch : ch;
}

/**
 * Translates an Oniguruma pattern (as `tokenizers` compiles it) to a global, Unicode
 * JavaScript RegExp. Supported: literals, escapes (\s \S \d \D \w \W \h \H \p{..} \P{..}
 * \n \r \t \f \v \a \e \xHH \x{H..} \uHHHH \0oo \b \B \A \z \Z \k<name> \1..\9), classes
 * (without nesting or &&), groups (capturing, (?:), named, look-ahead/behind), scoped or
 * leading flags i and m (Oniguruma's m is dot-all), greedy and lazy quantifiers. Refused
 * with a ValrError: possessive quantifiers, atomic groups, \G \K \R \X, (?x) and the rest.
 */
export function translateOnigRegex(src: string, where = 'regex'): RegExp {
  const fail = (why: string): never => arg(`${where}: the regex ${JSON.stringify(src)} cannot be translated to a JavaScript RegExp: ${why}`);
  const n = src.length;
  let out = '';
  let i = 0;
  let ci = false;
  let dotAll = false;
  let atGroupStart = true;
  const stack: { ci: boolean; dotAll: boolean }[] = [];

  const property = (j: number): [string, number] => {
    // src[j] is 'p' or 'P'
    let negate = src[j] === 'P';
    let name: string;
    let len: number;
    if (src[j + 1] === '{') {
      const e = src.indexOf('}', j + 2);
      if (e < 0) fail('unterminated \\p{');
      name = src.slice(j + 2, e);
      len = e + 1 - j;
    } else {
      name = src[j + 1] ?? '';
      len = 2;
    }
    if (name.startsWith('^')) {
      negate = !negate;
      name = name.slice(1);
    }
    const p = negate ? 'P' : 'p';
    for (const cand of [name, `Script=${name}`]) {
      try {
        new RegExp(`\\${p}{${cand}}`, 'u');
        return [`\\${p}{${cand}}`, len + 1];
      } catch {
        // try the next spelling
      }
    }
    return fail(`unknown Unicode property \\p{${name}}`);
  };

  /** An escape at src[j] === '\\'; returns the JS text and the length consumed. */
  const escape = (j: number, inClass: boolean): [string, number] => {
    const c = src[j + 1];
    if (c === undefined) fail('pattern ends with a backslash');
    switch (c) {
      case 's':
        return ['\\p{White_Space}', 2];
      case 'S':
        return ['\\P{White_Space}', 2];
      case 'd':
        return ['\\p{Nd}', 2];
      case 'D':
        return ['\\P{Nd}', 2];
      case 'w':
        return [inClass ? WORD : `[${WORD}]`, 2];
      case 'W':
        return inClass ? fail('\\W inside a character class') : [`[^${WORD}]`, 2];
      case 'h':
        return [inClass ? '0-9A-Fa-f' : '[0-9A-Fa-f]', 2];
      case 'H':
        return inClass ? fail('\\H inside a character class') : ['[^0-9A-Fa-f]', 2];
      case 'p':
      case 'P':
        return property(j + 1);
      case 'n':
      case 'r':
      case 't':
      case 'f':
      case 'v':
        return ['\\' + c, 2];
      case 'a':
        return ['\\x07', 2];
      case 'e':
        return ['\\x1b', 2];
      case 'x': {
        const m = /^x\{([0-9a-fA-F]{1,8})\}|^x([0-9a-fA-F]{1,2})/.exec(src.slice(j + 1, j + 12));
        if (!m) return fail('bad \\x escape');
        const cp = parseInt(m[1] ?? m[2], 16);
        if (cp > 0x10ffff) fail(`code point ${m[0]} out of range`);
        return [`\\u{${cp.toString(16)}}`, 1 + m[0].length];
      }
      case 'u': {
        const m = /^u([0-9a-fA-F]{4})/.exec(src.slice(j + 1, j + 6));
        if (!m) return fail('bad \\u escape');
        return [`\\u{${m[1]}}`, 6];
      }
      case '0': {
        const m = /^0[0-7]{0,2}/.exec(src.slice(j + 1, j + 4))!;
        return [`\\u{${parseInt(m[0], 8).toString(16)}}`, 1 + m[0].length];
      }
      case 'b':
        return [inClass ? '\\x08' : `(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`, 2];
      case 'B':
        return inClass ? fail('\\B inside a character class') : [`(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`, 2];
      case 'A':
        return inClass ? fail('\\A inside a character class') : ['(?<![\\s\\S])', 2];
      case 'z':
        return inClass ? fail('\\z inside a character class') : ['(?![\\s\\S])', 2];
      case 'Z':
        return inClass ? fail('\\Z inside a character class') : ['(?=\\n?(?![\\s\\S]))', 2];
      case 'k': {
        const m = /^k<([A-Za-z_][A-Za-z0-9_]*)>/.exec(src.slice(j + 1));
        if (!m || inClass) return fail('unsupported \\k escape');
        return ['\\' + m[0], 1 + m[0].length];
      }
      default:
        if (/[1-9]/.test(c)) {
          if (inClass) fail('octal escapes inside a character class');
          const m = /^[1-9][0-9]*/.exec(src.slice(j + 1))!;
          return ['\\' + m[0], 1 + m[0].length];
        }
        if (/[A-Za-z0-9]/.test(c)) return fail(`the escape \\${c} has no JavaScript equivalent`);
        {
          const cp = src.codePointAt(j + 1)!;
          const ch = String.fromCodePoint(cp);
          return [inClass ? classLiteral(ch) : literal(ch), 1 + ch.length];
        }
    }
  };

  const quantifierFollows = (j: number) => {
    // after a quantifier: a lazy '?' is kept, a possessive '+' is refused
    if (src[j] === '?') {
      out += '?';
      return j + 1;
    }
    if (src[j] === '+') fail('possessive quantifiers (x*+, x++, x?+) are not supported; use a greedy quantifier if the pattern allows it');
    return j;
  };

  while (i < n) {
    const c = src[i];
    const groupStart: boolean = atGroupStart;
    atGroupStart = false;
    if (c === '\\') {
      const [js, len] = escape(i, false);
      out += js;
      i += len;
    } else if (c === '[') {
      // collect the atoms first, so that ranges can be told from single characters
      let j = i + 1;
      let cls = '[';
      if (src[j] === '^') {
        cls += '^';
        j++;
      }
      const atoms: { js: string; ch?: string; dash?: boolean }[] = [];
      if (src[j] === ']') {
        atoms.push({ js: '\\]', ch: ']' });
        j++;
      }
      while (j < n && src[j] !== ']') {
        const d = src[j];
        if (d === '[') fail('nested character classes and POSIX brackets ([[:alpha:]]) are not supported');
        if (d === '&' && src[j + 1] === '&') fail('character class intersections (&&) are not supported');
        if (d === '\\') {
          const [js, len] = escape(j, true);
          atoms.push({ js });
          j += len;
        } else if (d === '-') {
          atoms.push({ js: '-', dash: true });
          j++;
        } else {
          const ch = String.fromCodePoint(src.codePointAt(j)!);
          atoms.push({ js: classLiteral(ch), ch });
          j += ch.length;
        }
      }
      if (j >= n) fail('unterminated character class');
      const cased = (a: { ch?: string } | undefined) => !!a?.ch && a.ch.toLowerCase() !== a.ch.toUpperCase();
      // a '-' between two atoms makes a range (a first or last '-' is literal)
      const rangeDash = (k: number) => k > 0 && k < atoms.length - 1 && atoms[k].dash === true;
      atoms.forEach((a, k) => {
        if (ci && cased(a)) {
          if (rangeDash(k - 1) || rangeDash(k + 1)) fail('case-insensitive character ranges are not supported');
          for (const v of caseVariants(a.ch!)) cls += classLiteral(v);
        } else {
          cls += a.js;
        }
      });
      out += cls + ']';
      i = j + 1;
    } else if (c === '(') {
      if (src[i + 1] !== '?') {
        stack.push({ ci, dotAll });
        out += '(';
        i++;
        atGroupStart = true;
        continue;
      }
      const rest = src.slice(i + 2, i + 40);
      let m: RegExpExecArray | null;
      if (rest.startsWith('#')) {
        const e = src.indexOf(')', i);
        if (e < 0) fail('unterminated comment group');
        i = e + 1;
        atGroupStart = groupStart;
        continue;
      }
      if (/^(?:[:=!]|<[=!])/.test(rest)) {
        const head = rest[0] === '<' ? rest.slice(0, 2) : rest[0];
        stack.push({ ci, dotAll });
        out += '(?' + head;
        i += 2 + head.length;
        atGroupStart = true;
        continue;
      }
      if ((m = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest))) {
        stack.push({ ci, dotAll });
        out += `(?<${m[1]}>`;
        i += 2 + m[0].length;
        atGroupStart = true;
        continue;
      }
      if ((m = /^([imx]*)(?:-([imx]*))?([:)])/.exec(rest)) && (m[1] || m[2] !== undefined)) {
        const on = m[1], off = m[2] ?? '';
        if ((on + off).includes('x')) fail('extended mode (?x) is not supported');
        let nci: boolean = ci, nda: boolean = dotAll;
        if (on.includes('i')) nci = true;
        if (on.includes('m')) nda = true;
        if (off.includes('i')) nci = false;
        if (off.includes('m')) nda = false;
        i += 2 + m[0].length;
        if (m[3] === ':') {
          stack.push({ ci, dotAll });
          out += '(?:';
          atGroupStart = true;
        } else {
          // Oniguruma and Perl differ on `a(?i)b|c`; at the start of a group they agree
          if (!groupStart) fail('inline flags such as (?i) are only supported at the start of the pattern or of a group; use (?i:...)');
          atGroupStart = true;
        }
        ci = nci;
        dotAll = nda;
        continue;
      }
      fail(`the group "(?${rest.slice(0, 2)}..." (atomic groups, conditionals, absence operators...) has no JavaScript equivalent`);
    } else if (c === ')') {
      const top = stack.pop();
      if (!top) fail('unbalanced )');
      ({ ci, dotAll } = top!);
      out += ')';
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      out += c;
      i = quantifierFollows(i + 1);
    } else if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(src.slice(i, i + 24));
      if (m && (m[1] !== '' || (m[2] === ',' && m[3] !== ''))) {
        out += `{${m[1] || '0'}${m[2]}${m[3]}}`;
        i = quantifierFollows(i + m[0].length);
      } else {
        out += '\\{';
        i++;
      }
    } else if (c === '.') {
      out += dotAll ? '[\\s\\S]' : '[^\\n]';
      i++;
    } else if (c === '^') {
      out += '(?<![^\\n])';
      i++;
    } else if (c === '$') {
      out += '(?![^\\n])';
      i++;
    } else if (c === '|') {
      out += '|';
      i++;
      atGroupStart = true;
    } else {
      const ch = String.fromCodePoint(src.codePointAt(i)!);
      i += ch.length;
      if (ci && ch.toLowerCase() !== ch.toUpperCase()) {
        const vs = caseVariants(ch);
        out += vs.length === 1 ? literal(ch) : `[${vs.map(classLiteral).join('')}]`;
      } else {
        out += literal(ch);
      }
    }
  }
  if (stack.length) fail('unbalanced (');
  try {
    return new RegExp(out, 'gu');
  } catch (e) {
    return fail(`JavaScript rejects the translation ${JSON.stringify(out)} (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------
// Splitting helpers (tokenizers' NormalizedString::split).

type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS = new Set<Behavior>(['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']);

/** Spans covering `s`, each flagged as a match or not (Oniguruma find_iter semantics). */
function findMatches(re: RegExp, s: string, out: number[]): void {
  // out: triples start, end, isMatch (0/1)
  out.length = 0;
  if (s.length === 0) {
    out.push(0, 0, 0);
    return;
  }
  let prev = 0;
  let from = 0;
  let lastMatchEnd = -1;
  while (from <= s.length) {
    re.lastIndex = from;
    const m = re.exec(s);
    if (!m) break;
    const start = m.index, end = start + m[0].length;
    if (start === end && end === lastMatchEnd) {
      // no empty match right after the previous match: step one character
      const cp = s.codePointAt(from);
      from += cp === undefined ? 1 : cp > 0xffff ? 2 : 1;
      continue;
    }
    from = end;
    lastMatchEnd = end;
    if (prev !== start) out.push(prev, start, 0);
    out.push(start, end, 1);
    prev = end;
  }
  if (prev !== s.length) out.push(prev, s.length, 0);
}

const spans: number[] = [];
function splitPieces(s: string, re: RegExp, behavior: Behavior, invert: boolean, out: string[]): void {
  findMatches(re, s, spans);
  const k = spans.length;
  if (invert) for (let i = 2; i < k; i += 3) spans[i] = 1 - spans[i];
  const emit = (a: number, b: number) => {
    if (b > a) out.push(s.slice(a, b));
  };
  switch (behavior) {
    case 'Isolated':
      for (let i = 0; i < k; i += 3) emit(spans[i], spans[i + 1]);
      return;
    case 'Removed':
      for (let i = 0; i < k; i += 3) if (!spans[i + 2]) emit(spans[i], spans[i + 1]);
      return;
    case 'Contiguous':
    case 'MergedWithPrevious': {
      const merged: number[] = [];
      let prevMatch = 0;
      for (let i = 0; i < k; i += 3) {
        const isMatch = spans[i + 2];
        const join = behavior === 'Contiguous' ? isMatch === prevMatch : isMatch && !prevMatch;
        if (join && merged.length) merged[merged.length - 1] = spans[i + 1];
        else merged.push(spans[i], spans[i + 1]);
        prevMatch = isMatch;
      }
      for (let i = 0; i < merged.length; i += 2) emit(merged[i], merged[i + 1]);
      return;
    }
    case 'MergedWithNext': {
      const merged: number[] = []; // built from the end: pairs start, end
      let prevMatch = 0;
      for (let i = k - 3; i >= 0; i -= 3) {
        const isMatch = spans[i + 2];
        if (isMatch && !prevMatch && merged.length) merged[merged.length - 2] = spans[i];
        else merged.push(spans[i], spans[i + 1]);
        prevMatch = isMatch;
      }
      for (let i = merged.length - 2; i >= 0; i -= 2) emit(merged[i], merged[i + 1]);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
let gpt2Re: RegExp | undefined;

type PreStep =
  | { kind: 'split'; re: RegExp; behavior: Behavior; invert: boolean }
  | { kind: 'bytelevel'; addPrefixSpace: boolean; re: RegExp | null };

type NormForm = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

interface AddedMatcher {
  re: RegExp;
  byContent: Map<string, BpeAddedToken>;
}

/** Like the Rust library's cache: words up to this many UTF-16 units are remembered. */
const CACHE_MAX_WORD = 256;
const CACHE_CAPACITY = 10_000;
/** Pair keys are a * PAIR + b; ids must stay below it. */
const PAIR = 0x400000;

const WHITE = /\p{White_Space}/u;
const WORD_START = new RegExp(`^[${RUST_WORD}]`, 'u');
const WORD_END = new RegExp(`[${RUST_WORD}]$`, 'u');

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export class BpeTokenizer {
  private readonly vocab: Map<string, number>;
  private readonly idToToken: (string | undefined)[];
  private readonly merges: Map<number, number>; // pair key -> rank
  private readonly mergeResult: Int32Array; // rank -> id of the merged token
  private readonly ignoreMerges: boolean;
  private readonly unkToken: string | null;
  private readonly fuseUnk: boolean;
  private readonly prefix: string | null;
  private readonly suffix: string | null;
  private readonly normalizer: NormForm[];
  private readonly steps: PreStep[];
  private readonly rawAdded: AddedMatcher | null;
  private readonly normAdded: AddedMatcher | null;
  private readonly added: BpeAddedToken[];
  private readonly addedIds = new Map<string, number>();
  private readonly specialContents: Set<string>;
  private readonly prefixIds: number[];
  private readonly suffixIds: number[];
  private readonly cache = new Map<string, number | number[]>();
  private readonly decodeBytes = new Map<number, Uint8Array>();
  /** Where the tokenizer came from (for messages). */
  readonly source: string;

  private constructor(json: Json, source: string) {
    this.source = source;
    const bad: (m: string) => never = (m) => arg(`${source}: ${m}`);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) bad('not a tokenizer.json object');
    const model = json.model as Json | undefined;
    if (!model || typeof model !== 'object') bad('has no "model" object');
    const type = model!.type ?? (model!.vocab && model!.merges ? 'BPE' : undefined);
    if (type !== 'BPE') bad(`model ${JSON.stringify(type)} is not supported by BpeTokenizer (only byte-level "BPE"; see WordTokenizer.fromHuggingFace for "WordLevel")`);
    const m = model as Json;

    // ---- vocabulary
    const vmap = m.vocab as Json;
    if (!vmap || typeof vmap !== 'object' || Array.isArray(vmap)) bad('model.vocab must be an object mapping tokens to ids');
    this.vocab = new Map();
    this.idToToken = [];
    for (const tok of Object.keys(vmap)) {
      const id = vmap[tok];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= PAIR) bad(`model.vocab: id ${JSON.stringify(id)} of ${JSON.stringify(tok)} is not a valid token id (0 <= id < ${PAIR})`);
      const idn = id as number;
      if (this.idToToken[idn] !== undefined) bad(`model.vocab: id ${idn} is both ${JSON.stringify(this.idToToken[idn])} and ${JSON.stringify(tok)}`);
      this.vocab.set(tok, idn);
      this.idToToken[idn] = tok;
    }

    // ---- model options
    if (m.dropout != null && m.dropout !== 0) bad(`model.dropout ${JSON.stringify(m.dropout)} is not supported (BPE dropout makes encodings random; set it to null)`);
    if (m.byte_fallback === true) bad('model.byte_fallback (SentencePiece-style BPE) is not supported; only byte-level BPE');
    const optStr = (k: string): string | null => {
      const v = m[k];
      if (v == null) return null;
      if (typeof v !== 'string') bad(`model.${k} must be a string or null`);
      return v as string;
    };
    this.unkToken = optStr('unk_token');
    this.prefix = optStr('continuing_subword_prefix');
    this.suffix = optStr('end_of_word_suffix');
    if (this.prefix === '') this.prefix = null;
    if (this.suffix === '') this.suffix = null;
    this.fuseUnk = m.fuse_unk === true;
    this.ignoreMerges = m.ignore_merges === true;

    // ---- merges: "a b" strings (older files) or ["a", "b"] pairs
    const merges = m.merges;
    if (!Array.isArray(merges)) bad('model.merges must be an array');
    const list = merges as unknown[];
    this.merges = new Map();
    this.mergeResult = new Int32Array(list.length);
    const plen = this.prefix?.length ?? 0;
    for (let r = 0; r < list.length; r++) {
      const e = list[r];
      let a: unknown, b: unknown;
      if (typeof e === 'string') {
        const parts = e.split(' ');
        if (parts.length !== 2) bad(`model.merges[${r}] ${JSON.stringify(e)} is not two tokens separated by one space`);
        [a, b] = parts;
      } else if (Array.isArray(e) && e.length === 2) {
        [a, b] = e;
      }
      if (typeof a !== 'string' || typeof b !== 'string') bad(`model.merges[${r}] must be "a b" or ["a", "b"]`);
      const ia = this.vocab.get(a), ib = this.vocab.get(b);
      if (ia === undefined || ib === undefined) bad(`model.merges[${r}]: ${JSON.stringify(ia === undefined ? a : b)} is not in model.vocab`);
      const merged = a + (this.prefix && b.startsWith(this.prefix) ? b.slice(plen) : b);
      const im = this.vocab.get(merged);
      if (im === undefined) bad(`model.merges[${r}]: the merged token ${JSON.stringify(merged)} is not in model.vocab`);
      this.merges.set(ia! * PAIR + ib!, r); // a later duplicate wins, as in the Rust HashMap
      this.mergeResult[r] = im!;
    }

    // ---- added tokens
    this.added = [];
    this.specialContents = new Set();
    if (json.added_tokens != null) {
      if (!Array.isArray(json.added_tokens)) bad('added_tokens must be an array');
      (json.added_tokens as Json[]).forEach((a, i) => {
        if (!a || typeof a.content !== 'string' || a.content === '') bad(`added_tokens[${i}] has no non-empty string "content"`);
        const id = a.id;
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= PAIR) bad(`added_tokens[${i}]: id ${JSON.stringify(id)} is not a valid token id`);
        const content = a.content as string;
        const prev = this.idToToken[id as number];
        if (prev !== undefined && prev !== content) bad(`added_tokens[${i}]: id ${id} is both ${JSON.stringify(prev)} and ${JSON.stringify(content)}`);
        const vid = this.vocab.get(content);
        if (vid !== undefined && vid !== id) bad(`added_tokens[${i}]: ${JSON.stringify(content)} has id ${id} but model.vocab gives it ${vid}`);
        const tok: BpeAddedToken = {
          id: id as number,
          content,
          special: a.special === true,
          singleWord: a.single_word === true,
          lstrip: a.lstrip === true,
          rstrip: a.rstrip === true,
          normalized: a.normalized === undefined ? a.special !== true : a.normalized === true,
        };
        this.added.push(tok);
        this.addedIds.set(content, tok.id);
        this.idToToken[tok.id] = content;
        if (tok.special) this.specialContents.add(content);
      });
    }

    // ---- normalizer
    this.normalizer = [];
    const addNorm = (nz: Json | null | undefined, where: string): void => {
      if (nz == null) return;
      switch (nz.type) {
        case 'Sequence':
          if (!Array.isArray(nz.normalizers)) bad(`${where}: Sequence without "normalizers"`);
          (nz.normalizers as Json[]).forEach((x, i) => addNorm(x, `${where}.normalizers[${i}]`));
          return;
        case 'NFC':
        case 'NFD':
        case 'NFKC':
        case 'NFKD':
          this.normalizer.push(nz.type);
          return;
        default:
          bad(`${where}: normalizer ${JSON.stringify(nz.type)} is not supported by BpeTokenizer (null, NFC, NFD, NFKC, NFKD or a Sequence of them)`);
      }
    };
    addNorm(json.normalizer as Json | null, 'normalizer');
    // as in the Rust library, id -> token gives a normalized added token's normalized content
    for (const t of this.added) if (t.normalized && this.normalizer.length) this.idToToken[t.id] = this.normalize(t.content);

    // ---- pre-tokenizer
    this.steps = [];
    const addPre = (p: Json | null | undefined, where: string): void => {
      if (p == null) return;
      switch (p.type) {
        case 'Sequence':
          if (!Array.isArray(p.pretokenizers)) bad(`${where}: Sequence without "pretokenizers"`);
          (p.pretokenizers as Json[]).forEach((x, i) => addPre(x, `${where}.pretokenizers[${i}]`));
          return;
        case 'ByteLevel': {
          const useRegex = p.use_regex !== false;
          if (useRegex && !gpt2Re) gpt2Re = translateOnigRegex(GPT2_PATTERN, 'ByteLevel');
          this.steps.push({ kind: 'bytelevel', addPrefixSpace: p.add_prefix_space === true, re: useRegex ? gpt2Re! : null });
          return;
        }
        case 'Split': {
          const pat = p.pattern as Json | undefined;
          const behavior = p.behavior as Behavior;
          if (!BEHAVIORS.has(behavior)) bad(`${where}: Split behavior ${JSON.stringify(p.behavior)} is not one of ${[...BEHAVIORS].join(', ')}`);
          let re: RegExp;
          if (pat && typeof pat.Regex === 'string') re = translateOnigRegex(pat.Regex, `${source}: ${where} (Split)`);
          else if (pat && typeof pat.String === 'string') re = new RegExp(pat.String === '' ? '(?!)' : escapeRegex(pat.String), 'gu');
          else bad(`${where}: Split needs a pattern {"Regex": ...} or {"String": ...}`);
          this.steps.push({ kind: 'split', re, behavior, invert: p.invert === true });
          return;
        }
        case 'Digits':
          this.steps.push({ kind: 'split', re: /\p{N}/gu, behavior: p.individual_digits === true ? 'Isolated' : 'Contiguous', invert: false });
          return;
        default:
          bad(`${where}: pre-tokenizer ${JSON.stringify(p.type)} is not supported by BpeTokenizer (ByteLevel, Split, Digits or a Sequence of them)`);
      }
    };
    addPre(json.pre_tokenizer as Json | null, 'pre_tokenizer');
    if (!this.steps.some((s) => s.kind === 'bytelevel')) {
      bad('pre_tokenizer has no ByteLevel step: only byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2 style) are supported');
    }

    // ---- post-processor (single sequences only)
    this.prefixIds = [];
    this.suffixIds = [];
    const addPost = (p: Json | null | undefined, where: string): void => {
      if (p == null) return;
      switch (p.type) {
        case 'Sequence':
          if (!Array.isArray(p.processors)) bad(`${where}: Sequence without "processors"`);
          (p.processors as Json[]).forEach((x, i) => addPost(x, `${where}.processors[${i}]`));
          return;
        case 'ByteLevel':
          return; // offsets only
        case 'RobertaProcessing':
        case 'BertProcessing': {
          const tokId = (k: string): number => {
            const v = p[k];
            if (!Array.isArray(v) || v.length !== 2 || typeof v[1] !== 'number') bad(`${where}: ${p.type}.${k} must be [token, id]`);
            return (v as number[])[1];
          };
          const cls = tokId('cls'), sep = tokId('sep');
          this.prefixIds.unshift(cls);
          this.suffixIds.push(sep);
          return;
        }
        case 'TemplateProcessing': {
          if (!Array.isArray(p.single)) bad(`${where}: TemplateProcessing without a "single" template`);
          const specials = (p.special_tokens ?? {}) as Json;
          const pre: number[] = [], post: number[] = [];
          let seen = 0;
          for (const [k, piece] of (p.single as Json[]).entries()) {
            if (piece && piece.Sequence) {
              const sid = (piece.Sequence as Json).id;
              if (sid !== 'A') bad(`${where}: single template piece ${k} is sequence ${JSON.stringify(sid)}; only $A can appear`);
              seen++;
            } else if (piece && piece.SpecialToken) {
              const name = (piece.SpecialToken as Json).id as string;
              const st = specials[name] as Json | undefined;
              if (!st || !Array.isArray(st.ids) || !st.ids.every((x) => Number.isInteger(x))) bad(`${where}: special token ${JSON.stringify(name)} has no "ids" in special_tokens`);
              (seen ? post : pre).push(...(st!.ids as number[]));
            } else {
              bad(`${where}: single template piece ${k} is neither a Sequence nor a SpecialToken`);
            }
          }
          if (seen !== 1) bad(`${where}: the single template must contain $A exactly once`);
          this.prefixIds.unshift(...pre);
          this.suffixIds.push(...post);
          return;
        }
        default:
          bad(`${where}: post-processor ${JSON.stringify(p.type)} is not supported by BpeTokenizer (ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing or a Sequence of them)`);
      }
    };
    addPost(json.post_processor as Json | null, 'post_processor');

    // ---- decoder
    const checkDecoder = (d: Json | null | undefined, where: string): void => {
      if (d == null) bad(`${where}: a byte-level BPE needs a ByteLevel decoder, the file has none`);
      if (d!.type === 'ByteLevel') return;
      if (d!.type === 'Sequence' && Array.isArray(d!.decoders) && d!.decoders.length > 0) {
        (d!.decoders as Json[]).forEach((x, i) => checkDecoder(x, `${where}.decoders[${i}]`));
        return;
      }
      bad(`${where}: decoder ${JSON.stringify(d!.type)} is not supported by BpeTokenizer (ByteLevel only)`);
    };
    checkDecoder(json.decoder as Json | null, 'decoder');

    for (const id of [...this.prefixIds, ...this.suffixIds]) if (this.idToToken[id] === undefined) bad(`post_processor: token id ${id} is not in the vocabulary`);

    // ---- added-token matchers: normalized: false on the raw text, normalized: true after the normalizer
    const matcher = (toks: BpeAddedToken[], norm: boolean): AddedMatcher | null => {
      if (!toks.length) return null;
      const byContent = new Map<string, BpeAddedToken>();
      for (const t of toks) {
        const key = norm ? this.normalize(t.content) : t.content;
        if (!byContent.has(key)) byContent.set(key, t);
      }
      const keys = [...byContent.keys()].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
      return { re: new RegExp(keys.map(escapeRegex).join('|'), 'gu'), byContent };
    };
    this.rawAdded = matcher(this.added.filter((t) => !t.normalized), false);
    this.normAdded = matcher(this.added.filter((t) => t.normalized), true);
  }

  /** Reads and parses a tokenizer.json file. */
  static fromFile(file: string): BpeTokenizer {
    if (typeof file !== 'string') arg('BpeTokenizer.fromFile: file must be a path');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      return arg(`BpeTokenizer.fromFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return arg(`${file}: not valid JSON (${(e as Error).message})`);
    }
    return new BpeTokenizer(json as Json, file);
  }

  /** Builds from a parsed tokenizer.json; `source` names it in error messages. */
  static fromJSON(obj: unknown, source = 'tokenizer.json'): BpeTokenizer {
    return new BpeTokenizer(obj as Json, source);
  }

  /** True when a parsed tokenizer.json has a BPE model and a ByteLevel pre-tokenizer step (what this class loads). */
  static isByteLevelBpe(obj: unknown): boolean {
    if (!obj || typeof obj !== 'object') return false;
    const o = obj as Json;
    const model = o.model as Json | undefined;
    if (!model || typeof model !== 'object') return false;
    if ((model.type ?? (model.vocab && model.merges ? 'BPE' : undefined)) !== 'BPE') return false;
    const has = (p: Json | null | undefined): boolean =>
      !!p && (p.type === 'ByteLevel' || (p.type === 'Sequence' && Array.isArray(p.pretokenizers) && (p.pretokenizers as Json[]).some(has)));
    return has(o.pre_tokenizer as Json | null);
  }

  private normalize(s: string): string {
    for (const f of this.normalizer) s = s.normalize(f);
    return s;
  }

  /** Cuts the added tokens out of `s` (tokenizers' AddedVocabulary::find_matches). */
  private splitAdded(s: string, m: AddedMatcher | null, onText: (t: string) => void, ids: number[]): void {
    if (!m || s === '') {
      if (s !== '') onText(s);
      return;
    }
    let last = 0;
    const re = m.re;
    re.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = re.exec(s))) {
      const tok = m.byContent.get(match[0])!;
      let start = match.index;
      let stop = start + match[0].length;
      if (tok.singleWord) {
        const startSpace = start === 0 || !WORD_END.test(s.slice(Math.max(0, start - 2), start));
        const stopSpace = stop === s.length || !WORD_START.test(s.slice(stop, stop + 2));
        if (!startSpace || !stopSpace) continue;
      }
      if (tok.lstrip) {
        let k = start;
        while (k > 0) {
          const cp = s.codePointAt(k - 1)!;
          const w = cp >= 0xdc00 && cp < 0xe000 && k >= 2 ? 2 : 1;
          if (!WHITE.test(s.slice(k - w, k))) break;
          k -= w;
        }
        start = Math.max(k, last);
      }
      if (tok.rstrip) {
        while (stop < s.length && WHITE.test(s[stop])) stop++;
      }
      if (last < start) onText(s.slice(last, start));
      ids.push(tok.id);
      last = stop;
    }
    if (last < s.length) onText(s.slice(last));
  }

  /** Pre-tokenizes one piece of (normalized) text and appends the BPE ids of its words. */
  private encodePiece(text: string, ids: number[]): void {
    let pieces = [text];
    for (const step of this.steps) {
      const next: string[] = [];
      if (step.kind === 'split') {
        for (const p of pieces) splitPieces(p, step.re, step.behavior, step.invert, next);
      } else {
        for (let p of pieces) {
          if (step.addPrefixSpace && !p.startsWith(' ')) p = ' ' + p;
          if (step.re) {
            const before = next.length;
            splitPieces(p, step.re, 'Isolated', false, next);
            for (let k = before; k < next.length; k++) next[k] = toByteLevel(next[k]);
          } else {
            next.push(toByteLevel(p));
          }
        }
      }
      pieces = next;
    }
    for (const w of pieces) this.bpe(w, ids);
  }

  private bpe(word: string, ids: number[]): void {
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) {
        ids.push(id);
        return;
      }
    }
    const hit = this.cache.get(word);
    if (hit !== undefined) {
      if (typeof hit === 'number') ids.push(hit);
      else for (let k = 0; k < hit.length; k++) ids.push(hit[k]);
      return;
    }
    const res = this.mergeWord(word);
    if (word.length < CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_CAPACITY) this.cache.clear();
      this.cache.set(word, res.length === 1 ? res[0] : res);
    }
    for (let k = 0; k < res.length; k++) ids.push(res[k]);
  }

  /** tokenizers' BPE::merge_word + Word::merge_all: merges by rank, leftmost first on ties. */
  private mergeWord(word: string): number[] {
    const sym: number[] = [];
    let pendingUnk = false;
    const unkId = this.unkToken !== null ? this.vocab.get(this.unkToken) : undefined;
    const n = word.length;
    for (let i = 0; i < n; ) {
      const cp = word.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      let s = word.slice(i, i + w);
      if (i > 0 && this.prefix) s = this.prefix + s;
      i += w;
      if (i >= n && this.suffix) s += this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (pendingUnk) {
          sym.push(unkId!);
          pendingUnk = false;
        }
        sym.push(id);
      } else if (this.unkToken !== null) {
        if (unkId === undefined) arg(`${this.source}: model.unk_token ${JSON.stringify(this.unkToken)} is not in model.vocab`);
        if (this.fuseUnk) pendingUnk = true;
        else sym.push(unkId!);
      }
      // no unk_token: the character is dropped, as in the Rust library
    }
    if (pendingUnk) sym.push(unkId!);
    const m = sym.length;
    if (m < 2) return sym;

    const merges = this.merges, result = this.mergeResult;
    const c = Int32Array.from(sym);
    const prev = new Int32Array(m), next = new Int32Array(m);
    const alive = new Uint8Array(m).fill(1);
    for (let k = 0; k < m; k++) {
      prev[k] = k - 1;
      next[k] = k + 1 < m ? k + 1 : -1;
    }
    // binary min-heap of (rank, position) pairs: the lowest rank first, then the leftmost
    const hr: number[] = [], hp: number[] = [];
    const less = (a: number, b: number) => hr[a] < hr[b] || (hr[a] === hr[b] && hp[a] < hp[b]);
    const swap = (a: number, b: number) => {
      const r = hr[a], p = hp[a];
      hr[a] = hr[b];
      hp[a] = hp[b];
      hr[b] = r;
      hp[b] = p;
    };
    const push = (rank: number, pos: number) => {
      let k = hr.length;
      hr.push(rank);
      hp.push(pos);
      while (k > 0) {
        const parent = (k - 1) >> 1;
        if (!less(k, parent)) break;
        swap(k, parent);
        k = parent;
      }
    };
    const pop = () => {
      const last = hr.length - 1;
      swap(0, last);
      hr.pop();
      hp.pop();
      let k = 0;
      const len = hr.length;
      for (;;) {
        const l = 2 * k + 1, r = l + 1;
        let best = k;
        if (l < len && less(l, best)) best = l;
        if (r < len && less(r, best)) best = r;
        if (best === k) break;
        swap(k, best);
        k = best;
      }
    };
    for (let k = 0; k + 1 < m; k++) {
      const r = merges.get(c[k] * PAIR + c[k + 1]);
      if (r !== undefined) push(r, k);
    }
    while (hr.length) {
      const rank = hr[0], pos = hp[0];
      pop();
      if (!alive[pos]) continue;
      const nx = next[pos];
      if (nx === -1) continue;
      // stale entry: the pair at pos changed since it was queued
      const cur = merges.get(c[pos] * PAIR + c[nx]);
      if (cur === undefined || result[cur] !== result[rank]) continue;
      c[pos] = result[rank];
      alive[nx] = 0;
      const nn = next[nx];
      next[pos] = nn;
      if (nn !== -1) prev[nn] = pos;
      const pv = prev[pos];
      if (pv >= 0) {
        const r = merges.get(c[pv] * PAIR + c[pos]);
        if (r !== undefined) push(r, pv);
      }
      if (nn !== -1) {
        const r = merges.get(c[pos] * PAIR + c[nn]);
        if (r !== undefined) push(r, pos);
      }
    }
    const out: number[] = [];
    for (let k = 0; k !== -1; k = next[k]) out.push(c[k]);
    return out;
  }

  /** Token ids of `text`, as the Python `tokenizers` library's `encode(text).ids`. */
  encode(text: string, options: BpeEncodeOptions = {}): Int32Array {
    if (typeof text !== 'string') arg(`BpeTokenizer.encode: text must be a string, got ${typeof text}`);
    const addSpecial = options.addSpecialTokens ?? true;
    const ids: number[] = addSpecial ? this.prefixIds.slice() : [];
    const normAdded = this.normAdded;
    this.splitAdded(
      text,
      this.rawAdded,
      (piece) => {
        const normalized = this.normalizer.length ? this.normalize(piece) : piece;
        this.splitAdded(normalized, normAdded, (t) => this.encodePiece(t, ids), ids);
      },
      ids,
    );
    if (addSpecial) for (const id of this.suffixIds) ids.push(id);
    return Int32Array.from(ids);
  }

  /** Text of `ids` (ByteLevel decoder; invalid UTF-8 becomes U+FFFD). Unknown ids throw ERR_VALR_RANGE. */
  decode(ids: ArrayLike<number>, options: BpeDecodeOptions = {}): string {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') arg('BpeTokenizer.decode: ids must be an array of token ids');
    const skip = options.skipSpecialTokens === true;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = Number.isInteger(id) && id >= 0 ? this.idToToken[id] : undefined;
      if (tok === undefined) throw new ValrError('ERR_VALR_RANGE', `BpeTokenizer.decode: token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      if (skip && this.specialContents.has(tok)) continue;
      let bytes = this.decodeBytes.get(id);
      if (!bytes) {
        bytes = tokenBytes(tok);
        this.decodeBytes.set(id, bytes);
      }
      parts.push(bytes);
      total += bytes.length;
    }
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      buf.set(p, o);
      o += p.length;
    }
    return utf8.decode(buf);
  }

  /** The id of `token` (added tokens first, then the model vocabulary), or undefined. */
  id(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.vocab.get(token);
  }

  /** The token of `id` (in byte-level characters, e.g. "Ġthe"), or undefined. */
  token(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToToken[id] : undefined;
  }

  /** 1 + the largest token id (model vocabulary and added tokens): the embedding rows needed. */
  get vocabSize(): number {
    return this.idToToken.length;
  }

  /** The added tokens of the file (special ones have `special: true`). */
  get addedTokens(): readonly BpeAddedToken[] {
    return this.added.map((t) => ({ ...t }));
  }

  /** True for the ids of special added tokens (what decode's skipSpecialTokens leaves out). */
  isSpecial(id: number): boolean {
    const t = this.token(id);
    return t !== undefined && this.specialContents.has(t);
  }
}

const utf8 = new TextDecoder('utf-8');

/** ByteLevel decoder for one token: its byte characters, or its own UTF-8 when it has others. */
function tokenBytes(tok: string): Uint8Array {
  const out = new Uint8Array(tok.length);
  for (let i = 0; i < tok.length; i++) {
    const c = tok.charCodeAt(i);
    const b = c < CHAR_BYTE.length ? CHAR_BYTE[c] : -1;
    if (b < 0) return Buffer.from(tok, 'utf8');
    out[i] = b;
  }
  return out;
}
