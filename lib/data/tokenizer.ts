// A word-level tokenizer for the synthetic chain-of-thought data (and for users' own
// Hugging Face "WordLevel" tokenizer.json files).
//
// Default rule ("valr"): the text is lower-cased, then split into runs of letters, single
// digits (numbers are spelled digit by digit, so every number is in vocabulary) and single
// punctuation/symbol characters; whitespace separates and is dropped. Special tokens written
// literally in the text ("<image>") are recognised before splitting (unless allowSpecial is
// false). decode() joins the tokens with single spaces, so
//   decode(encode(text)) == the normalised text, and encode(decode(ids)) == ids
// for ids without <unk>.
//
// Built vocabularies start with the special tokens in this fixed order (ids 0..9):
//   <pad> <unk> <bos> <eos> <image> <latent> </latent> <slot> <step> <answer>
// then the digits 0-9, then extra tokens, then the training words by frequency (ties in
// code-unit order): deterministic for the same texts.
import * as fs from 'fs';
import { ValrError } from '../errors';

export const SPECIAL_TOKENS = ['<pad>', '<unk>', '<bos>', '<eos>', '<image>', '<latent>', '</latent>', '<slot>', '<step>', '<answer>'] as const;

export type SpecialRole = 'pad' | 'unk' | 'bos' | 'eos' | 'image' | 'latentStart' | 'latentEnd' | 'slot' | 'step' | 'answer';
const ROLES: readonly SpecialRole[] = ['pad', 'unk', 'bos', 'eos', 'image', 'latentStart', 'latentEnd', 'slot', 'step', 'answer'];

export type SpecialIds = Record<SpecialRole, number>;

/**
 * Pre-tokenizer steps, applied in order to each piece of text:
 * - 'valr': letters runs, single digits, single other non-space characters;
 * - 'whitespace-split': split on whitespace (Hugging Face WhitespaceSplit);
 * - 'whitespace': `\w+|[^\w\s]+` (Hugging Face Whitespace);
 * - 'bert': split on whitespace, every punctuation/symbol character alone (BertPreTokenizer);
 * - 'punctuation': every punctuation/symbol character alone (Punctuation, "isolated");
 * - 'digits' / 'digits-individual': digit runs / single digits apart (Digits).
 */
export type PreTokenizerStep = 'valr' | 'whitespace-split' | 'whitespace' | 'bert' | 'punctuation' | 'digits' | 'digits-individual';
/** Normalizer steps, applied in order: 'lowercase', 'nfc', 'nfd', 'nfkc', 'nfkd', 'strip-accents', 'strip'. */
export type NormalizerStep = 'lowercase' | 'nfc' | 'nfd' | 'nfkc' | 'nfkd' | 'strip-accents' | 'strip';

export interface TokenizerBuildOptions {
  /** Words seen fewer times are left out (they encode as <unk>). Default 1. */
  minCount?: number;
  /** Cap on the vocabulary size, special tokens included. Default: no cap. */
  maxVocab?: number;
  /** Tokens always in the vocabulary, after the specials and digits. */
  extraTokens?: string[];
}

export interface EncodeOptions {
  /** Recognise special tokens written in the text (default true). */
  allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (default false). */
  skipSpecial?: boolean;
}

export interface WordTokenizerJSON {
  type: 'valr-word-level';
  version: 1;
  normalizer: NormalizerStep[];
  preTokenizer: PreTokenizerStep[];
  vocab: string[];
  /** role -> token */
  special: Record<SpecialRole, string>;
  /** Other tokens matched literally in text and skipped by decode(skipSpecial). */
  extraSpecial?: string[];
}

const NORMALIZERS = new Set<NormalizerStep>(['lowercase', 'nfc', 'nfd', 'nfkc', 'nfkd', 'strip-accents', 'strip']);
const PRETOKENIZERS = new Set<PreTokenizerStep>(['valr', 'whitespace-split', 'whitespace', 'bert', 'punctuation', 'digits', 'digits-individual']);

const RE = {
  valr: /\p{L}+|\p{N}|[^\s\p{L}\p{N}]/gu,
  whitespaceSplit: /\S+/gu,
  whitespace: /\w+|[^\w\s]+/gu,
  bert: /[^\s\p{P}\p{S}]+|[\p{P}\p{S}]/gu,
  punctuation: /[^\p{P}\p{S}]+|[\p{P}\p{S}]/gu,
  digits: /\p{N}+|\P{N}+/gu,
  digitsIndividual: /\p{N}|\P{N}+/gu,
};

function arg(message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', message);
}

function normalize(text: string, steps: readonly NormalizerStep[]): string {
  let t = text;
  for (const s of steps) {
    switch (s) {
      case 'lowercase':
        t = t.toLowerCase();
        break;
      case 'nfc':
      case 'nfd':
      case 'nfkc':
      case 'nfkd':
        t = t.normalize(s.toUpperCase());
        break;
      case 'strip-accents':
        t = t.normalize('NFD').replace(/\p{M}/gu, '');
        break;
      case 'strip':
        t = t.trim();
        break;
    }
  }
  return t;
}

function preTokenize(text: string, steps: readonly PreTokenizerStep[]): string[] {
  let pieces = [text];
  for (const s of steps) {
    const re =
      s === 'valr' ? RE.valr
      : s === 'whitespace-split' ? RE.whitespaceSplit
      : s === 'whitespace' ? RE.whitespace
      : s === 'bert' ? RE.bert
      : s === 'punctuation' ? RE.punctuation
      : s === 'digits' ? RE.digits
      : RE.digitsIndividual;
    const next: string[] = [];
    for (const p of pieces) for (const m of p.matchAll(re)) if (m[0].trim() !== '') next.push(m[0]);
    pieces = next;
  }
  return pieces;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class WordTokenizer {
  private readonly vocab: string[];
  private readonly index: Map<string, number>;
  private readonly special: Record<SpecialRole, string>;
  private readonly specialIdsCache: SpecialIds;
  private readonly specialSet: Set<number>;
  private readonly extraSpecial: string[];
  private readonly specialRe: RegExp;
  readonly normalizer: readonly NormalizerStep[];
  readonly preTokenizer: readonly PreTokenizerStep[];

  private constructor(json: WordTokenizerJSON) {
    this.vocab = json.vocab.slice();
    this.index = new Map(this.vocab.map((t, i) => [t, i]));
    this.special = { ...json.special };
    this.normalizer = Object.freeze(json.normalizer.slice());
    this.preTokenizer = Object.freeze(json.preTokenizer.slice());
    this.extraSpecial = (json.extraSpecial ?? []).slice();
    this.specialIdsCache = {} as SpecialIds;
    for (const r of ROLES) this.specialIdsCache[r] = this.index.get(this.special[r])!;
    const literal = [...new Set([...ROLES.map((r) => this.special[r]), ...this.extraSpecial])];
    this.specialSet = new Set(literal.map((t) => this.index.get(t)!));
    literal.sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.specialRe = new RegExp(literal.map(escapeRegex).join('|'), 'g');
  }

  /** Builds a vocabulary from training texts (see the file header for the id order). */
  static build(texts: readonly string[], options: TokenizerBuildOptions = {}): WordTokenizer {
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) arg('WordTokenizer.build: texts must be an array of strings');
    const minCount = options.minCount ?? 1;
    if (!Number.isInteger(minCount) || minCount < 1) arg(`WordTokenizer.build: minCount must be a positive integer, got ${minCount}`);
    const maxVocab = options.maxVocab ?? Infinity;
    if (maxVocab !== Infinity && (!Number.isInteger(maxVocab) || maxVocab < SPECIAL_TOKENS.length)) {
      arg(`WordTokenizer.build: maxVocab must be an integer >= ${SPECIAL_TOKENS.length}, got ${maxVocab}`);
    }
    const extra = options.extraTokens ?? [];
    if (!Array.isArray(extra) || !extra.every((t) => typeof t === 'string' && t !== '' && !/\s/.test(t))) {
      arg('WordTokenizer.build: extraTokens must be non-empty strings without whitespace');
    }
    const special = Object.fromEntries(ROLES.map((r, i) => [r, SPECIAL_TOKENS[i]])) as Record<SpecialRole, string>;
    const base: WordTokenizerJSON = { type: 'valr-word-level', version: 1, normalizer: ['lowercase'], preTokenizer: ['valr'], vocab: [...SPECIAL_TOKENS], special };
    // a throwaway tokenizer over the specials only gives us the exact splitting rule
    const splitter = new WordTokenizer(base);
    const counts = new Map<string, number>();
    for (const t of texts) {
      for (const piece of splitter.pieces(t, true)) {
        if (piece.special) continue;
        counts.set(piece.text, (counts.get(piece.text) ?? 0) + 1);
      }
    }
    const vocab: string[] = [...SPECIAL_TOKENS];
    const seen = new Set<string>(vocab);
    const add = (t: string) => {
      if (!seen.has(t) && vocab.length < maxVocab) {
        seen.add(t);
        vocab.push(t);
      }
    };
    for (let d = 0; d <= 9; d++) add(String(d));
    for (const t of extra) add(t);
    const words = [...counts].filter(([, c]) => c >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [w] of words) add(w);
    return new WordTokenizer({ ...base, vocab });
  }

  /** Splits into special-token and word pieces. */
  private pieces(text: string, allowSpecial: boolean): { text: string; special: boolean }[] {
    const out: { text: string; special: boolean }[] = [];
    const words = (s: string) => {
      for (const w of preTokenize(normalize(s, this.normalizer), this.preTokenizer)) out.push({ text: w, special: false });
    };
    if (!allowSpecial) {
      words(text);
      return out;
    }
    let last = 0;
    this.specialRe.lastIndex = 0;
    for (const m of text.matchAll(this.specialRe)) {
      words(text.slice(last, m.index));
      out.push({ text: m[0], special: true });
      last = m.index! + m[0].length;
    }
    words(text.slice(last));
    return out;
  }

  /** The normalised, pre-tokenised words of `text` (what encode looks up). */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    if (typeof text !== 'string') arg(`WordTokenizer.tokenize: text must be a string, got ${typeof text}`);
    return this.pieces(text, options.allowSpecial ?? true).map((p) => p.text);
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    if (typeof text !== 'string') arg(`WordTokenizer.encode: text must be a string, got ${typeof text}`);
    const pieces = this.pieces(text, options.allowSpecial ?? true);
    const ids = new Int32Array(pieces.length);
    const unk = this.specialIdsCache.unk;
    for (let i = 0; i < pieces.length; i++) ids[i] = this.index.get(pieces[i].text) ?? unk;
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') arg('WordTokenizer.decode: ids must be an array of token ids');
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (options.skipSpecial && this.specialSet.has(id)) continue;
      out.push(this.token(id));
    }
    return out.join(' ');
  }

  /** The id of `token`, or the <unk> id when it is not in the vocabulary (see has()). */
  id(token: string): number {
    return this.index.get(token) ?? this.specialIdsCache.unk;
  }

  has(token: string): boolean {
    return this.index.has(token);
  }

  token(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
      throw new ValrError('ERR_VALR_RANGE', `WordTokenizer: token id ${id} is out of range [0, ${this.vocab.length})`);
    }
    return this.vocab[id];
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** The ids of the special roles. */
  get specialIds(): SpecialIds {
    return { ...this.specialIdsCache };
  }

  isSpecial(id: number): boolean {
    return this.specialSet.has(id);
  }

  toJSON(): WordTokenizerJSON {
    const json: WordTokenizerJSON = {
      type: 'valr-word-level',
      version: 1,
      normalizer: this.normalizer.slice(),
      preTokenizer: this.preTokenizer.slice(),
      vocab: this.vocab.slice(),
      special: { ...this.special },
    };
    if (this.extraSpecial.length) json.extraSpecial = this.extraSpecial.slice();
    return json;
  }

  static fromJSON(obj: unknown): WordTokenizer {
    const bad = (m: string): never => arg(`WordTokenizer.fromJSON: ${m}`);
    if (obj === null || typeof obj !== 'object') bad('expected an object');
    const o = obj as Partial<WordTokenizerJSON>;
    if (o.type !== 'valr-word-level') bad(`type must be 'valr-word-level', got ${JSON.stringify(o.type)}`);
    if (o.version !== 1) bad(`version ${JSON.stringify(o.version)} is not supported (1 expected)`);
    if (!Array.isArray(o.vocab) || !o.vocab.every((t) => typeof t === 'string' && t !== '')) bad('vocab must be an array of non-empty strings');
    const vocab = o.vocab as string[];
    const seen = new Set<string>();
    for (const t of vocab) {
      if (seen.has(t)) bad(`token ${JSON.stringify(t)} appears twice in the vocab`);
      seen.add(t);
    }
    if (!Array.isArray(o.normalizer) || !o.normalizer.every((s) => NORMALIZERS.has(s))) bad(`normalizer must be a list of ${[...NORMALIZERS].join(', ')}`);
    if (!Array.isArray(o.preTokenizer) || !o.preTokenizer.every((s) => PRETOKENIZERS.has(s))) bad(`preTokenizer must be a list of ${[...PRETOKENIZERS].join(', ')}`);
    if (o.special === null || typeof o.special !== 'object') bad('special must map roles to tokens');
    for (const r of ROLES) {
      const t = (o.special as Record<string, unknown>)[r];
      if (typeof t !== 'string' || !seen.has(t)) bad(`special.${r} must be a token of the vocab, got ${JSON.stringify(t)}`);
    }
    if (o.extraSpecial !== undefined && (!Array.isArray(o.extraSpecial) || !o.extraSpecial.every((t) => typeof t === 'string' && seen.has(t)))) {
      bad('extraSpecial must be a list of tokens of the vocab');
    }
    return new WordTokenizer(o as WordTokenizerJSON);
  }

  /**
   * Loads a Hugging Face tokenizer.json whose model is "WordLevel" (vocab map + unk_token).
   * Token ids are kept as the file gives them (vocab and added_tokens, which must cover
   * 0..n-1 without gaps). The unk role is the model's unk_token; the pad role is
   * padding.pad_token when the file has one; every other role (and pad/unk otherwise) is the
   * token of the same name (<bos>, <latent>, ...) and is appended after the last id when
   * the file lacks it, so size the embedding matrix by vocabSize. Supported normalizers:
   * Lowercase, NFC/NFD/NFKC/NFKD, StripAccents, Strip, BertNormalizer and Sequences of
   * them; pre-tokenizers: Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation,
   * Digits and Sequences of them (none: this package's rule). Other models (BPE, Unigram,
   * WordPiece) are not supported yet.
   */
  static fromHuggingFace(file: string): WordTokenizer {
    const bad = (m: string): never => arg(`${file}: ${m}`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      return arg(`WordTokenizer.fromHuggingFace: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return bad(`not valid JSON (${(e as Error).message})`);
    }
    if (json === null || typeof json !== 'object') bad('not a tokenizer.json object');
    const model = json.model as Record<string, unknown> | undefined;
    if (!model || typeof model !== 'object') return bad('has no "model" object');
    const type = model.type ?? (model.vocab && model.merges ? 'BPE' : undefined);
    if (type !== 'WordLevel') {
      bad(
        `tokenizer model ${JSON.stringify(type)} is not supported yet; only "WordLevel" tokenizers (a vocab map and an unk_token) ` +
          `can be loaded. BPE, Unigram and WordPiece tokenizers need their own implementation; build a word-level vocabulary ` +
          `with WordTokenizer.build(texts) instead.`,
      );
    }
    const vmap = model.vocab as Record<string, unknown>;
    if (!vmap || typeof vmap !== 'object' || Array.isArray(vmap)) bad('model.vocab must be an object mapping tokens to ids');
    const byId = new Map<number, string>();
    const put = (tok: string, id: unknown, where: string) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 10_000_000) bad(`${where}: id ${JSON.stringify(id)} of ${JSON.stringify(tok)} is not a valid token id`);
      const prev = byId.get(id as number);
      if (prev !== undefined && prev !== tok) bad(`${where}: id ${id} is both ${JSON.stringify(prev)} and ${JSON.stringify(tok)}`);
      byId.set(id as number, tok);
    };
    for (const tok of Object.keys(vmap)) put(tok, vmap[tok], 'model.vocab');
    const extraSpecial: string[] = [];
    if (json.added_tokens !== undefined && json.added_tokens !== null) {
      if (!Array.isArray(json.added_tokens)) bad('added_tokens must be an array');
      for (const [i, a] of (json.added_tokens as Record<string, unknown>[]).entries()) {
        if (!a || typeof a.content !== 'string') bad(`added_tokens[${i}] has no string "content"`);
        put(a.content as string, a.id, `added_tokens[${i}]`);
        extraSpecial.push(a.content as string);
      }
    }
    const vocab: string[] = [];
    for (let i = 0; i < byId.size; i++) {
      const t = byId.get(i);
      if (t === undefined) return bad(`token ids are not contiguous: id ${i} is missing (ids run to ${Math.max(...byId.keys())})`);
      vocab.push(t);
    }
    const seen = new Set<string>();
    for (const t of vocab) {
      if (seen.has(t)) bad(`token ${JSON.stringify(t)} has two ids`);
      seen.add(t);
    }
    if (vocab.some((t) => t === '')) bad('the empty string cannot be a token');
    const unk = model.unk_token;
    if (typeof unk !== 'string' || !seen.has(unk)) bad(`model.unk_token ${JSON.stringify(unk)} must be a token of the vocab`);

    const special = {} as Record<SpecialRole, string>;
    const padding = json.padding as Record<string, unknown> | null | undefined;
    ROLES.forEach((r, i) => {
      let t: string = SPECIAL_TOKENS[i];
      if (r === 'unk') t = unk as string;
      else if (r === 'pad' && padding && typeof padding.pad_token === 'string' && seen.has(padding.pad_token)) t = padding.pad_token;
      if (!seen.has(t)) {
        seen.add(t);
        vocab.push(t);
      }
      special[r] = t;
    });

    const normalizer: NormalizerStep[] = [];
    const addNorm = (n: Record<string, unknown> | null | undefined, where: string): void => {
      if (!n) return;
      switch (n.type) {
        case 'Sequence':
          if (!Array.isArray(n.normalizers)) bad(`${where}: Sequence without "normalizers"`);
          (n.normalizers as Record<string, unknown>[]).forEach((m, i) => addNorm(m, `${where}.normalizers[${i}]`));
          return;
        case 'Lowercase':
          normalizer.push('lowercase');
          return;
        case 'NFC':
        case 'NFD':
        case 'NFKC':
        case 'NFKD':
          normalizer.push((n.type as string).toLowerCase() as NormalizerStep);
          return;
        case 'StripAccents':
          normalizer.push('strip-accents');
          return;
        case 'Strip':
          normalizer.push('strip');
          return;
        case 'BertNormalizer':
          if (n.strip_accents === true || (n.strip_accents == null && n.lowercase !== false)) normalizer.push('strip-accents');
          if (n.lowercase !== false) normalizer.push('lowercase');
          return;
        default:
          bad(`${where}: normalizer ${JSON.stringify(n.type)} is not supported (Lowercase, NFC, NFD, NFKC, NFKD, StripAccents, Strip, BertNormalizer, Sequence)`);
      }
    };
    addNorm(json.normalizer as Record<string, unknown> | null, 'normalizer');

    const preTokenizer: PreTokenizerStep[] = [];
    const addPre = (p: Record<string, unknown> | null | undefined, where: string): void => {
      if (!p) return;
      switch (p.type) {
        case 'Sequence':
          if (!Array.isArray(p.pretokenizers)) bad(`${where}: Sequence without "pretokenizers"`);
          (p.pretokenizers as Record<string, unknown>[]).forEach((m, i) => addPre(m, `${where}.pretokenizers[${i}]`));
          return;
        case 'Whitespace':
          preTokenizer.push('whitespace');
          return;
        case 'WhitespaceSplit':
          preTokenizer.push('whitespace-split');
          return;
        case 'BertPreTokenizer':
          preTokenizer.push('bert');
          return;
        case 'Punctuation':
          preTokenizer.push('punctuation');
          return;
        case 'Digits':
          preTokenizer.push(p.individual_digits ? 'digits-individual' : 'digits');
          return;
        default:
          bad(`${where}: pre-tokenizer ${JSON.stringify(p.type)} is not supported (Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation, Digits, Sequence)`);
      }
    };
    addPre(json.pre_tokenizer as Record<string, unknown> | null, 'pre_tokenizer');
    if (preTokenizer.length === 0) preTokenizer.push('valr');
    else if (!preTokenizer.some((s) => s === 'whitespace' || s === 'whitespace-split' || s === 'bert' || s === 'valr')) preTokenizer.unshift('whitespace-split');

    return new WordTokenizer({ type: 'valr-word-level', version: 1, normalizer, preTokenizer, vocab, special, extraSpecial });
  }
}

/** The ids of the special tokens: { pad, unk, bos, eos, image, latentStart, latentEnd, slot, step, answer }. */
export function specialIds(tok: WordTokenizer): SpecialIds {
  if (!(tok instanceof WordTokenizer)) arg('specialIds: expected a WordTokenizer');
  return tok.specialIds;
}
