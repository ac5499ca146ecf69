/**
 * Hidden-character detection: code points that render as nothing (or reorder
 * what is rendered) and so can carry instructions a human reviewer does not
 * see — zero-width characters, the Unicode tag block ("ASCII smuggling"),
 * bidirectional controls ("Trojan Source", CVE-2021-42574) and other format
 * characters.
 *
 * Kinds:
 * - `zero-width`: U+200B–U+200D, U+2060, U+FEFF;
 * - `tag`: U+E0000–U+E007F;
 * - `bidi`: U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C;
 * - `other-format`: every other general category Cf character (soft hyphen,
 *   invisible operators U+2061–U+2064, U+180E, ...) and the supplementary
 *   variation selectors U+E0100–U+E01EF (a known channel for smuggling bytes;
 *   VS1–16, used by emoji, are not flagged).
 *
 * Pure and linear: one pass with one regular expression, at most
 * {@link MAX_HIDDEN_FINDINGS} findings.
 */

/** Most findings {@link findHiddenCharacters} returns. */
export const MAX_HIDDEN_FINDINGS = 100;

export type HiddenKind = 'zero-width' | 'tag' | 'bidi' | 'other-format';

/** One hidden character: its kind, its UTF-16 index in the text and its code point. */
export interface HiddenCharacter {
  readonly kind: HiddenKind;
  readonly index: number;
  readonly codePoint: number;
}

// The tag block is listed explicitly: U+E0000 and U+E0002–U+E001F are unassigned, so not Cf.
const HIDDEN = /[\p{Cf}\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]/u;
const HIDDEN_ALL = /[\p{Cf}\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]/gu;

function kindOf(cp: number): HiddenKind {
  if ((cp >= 0x200b && cp <= 0x200d) || cp === 0x2060 || cp === 0xfeff) return 'zero-width';
  if (cp >= 0xe0000 && cp <= 0xe007f) return 'tag';
  if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c) return 'bidi';
  return 'other-format';
}

/** The hidden characters in `text`, in order, at most {@link MAX_HIDDEN_FINDINGS}. */
export function findHiddenCharacters(text: string): HiddenCharacter[] {
  if (typeof text !== 'string') throw new TypeError('findHiddenCharacters: text must be a string');
  const out: HiddenCharacter[] = [];
  for (const m of text.matchAll(HIDDEN_ALL)) {
    const cp = m[0].codePointAt(0) as number;
    out.push({ kind: kindOf(cp), index: m.index, codePoint: cp });
    if (out.length >= MAX_HIDDEN_FINDINGS) break;
  }
  return out;
}

/** Whether `text` holds any hidden character. */
export function hasHiddenCharacters(text: string): boolean {
  if (typeof text !== 'string') throw new TypeError('hasHiddenCharacters: text must be a string');
  return HIDDEN.test(text);
}

/** `text` with every hidden character removed (all of them: not bounded like {@link findHiddenCharacters}). */
export function stripHiddenCharacters(text: string): string {
  if (typeof text !== 'string') throw new TypeError('stripHiddenCharacters: text must be a string');
  return text.replace(HIDDEN_ALL, '');
}
