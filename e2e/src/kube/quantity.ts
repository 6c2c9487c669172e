import { badRequest } from './errors.js';

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const DECIMAL_SUFFIX = new Map(Object.entries(DECIMAL).map(([s, e]) => [e, s]));
const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|([eE][+-]?\d+))?$/;

/** The message the real server answers a malformed quantity with, naming the field. */
function malformed(field: string, value: unknown): Error {
  return badRequest(
    `${field}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got ${JSON.stringify(value)}`,
  );
}

/**
 * A resource quantity in apimachinery's canonical form (`resource.Quantity.String()`), which is
 * what a real API server stores: `1000m` → `1`, `0.5` → `500m`, `1024Mi` → `1Gi`, `2000` → `2k`,
 * `1.5Mi` → `1536Ki`. The format follows the suffix given (binary, decimal or exponent); a binary
 * value below 1024 or with a fraction is written in decimal; precision finer than nano rounds up.
 * `field` names the value in the error for a malformed one.
 */
export function canonicalQuantity(value: unknown, field: string): string {
  if (typeof value !== 'string' && typeof value !== 'number') throw malformed(field, value);
  const text = String(value).trim();
  const m = QUANTITY.exec(text);
  if (!m || (!m[2] && !m[3])) throw malformed(field, value);
  const [, sign, int = '', frac = '', suffix, exponent] = m;
  let mantissa = BigInt(`${int || '0'}${frac}`);
  let scale = -frac.length;
  let format: 'BinarySI' | 'DecimalSI' | 'DecimalExponent';
  if (suffix && suffix in BINARY) {
    mantissa *= 2n ** BigInt(BINARY[suffix]!);
    format = 'BinarySI';
  } else if (exponent) {
    scale += Number(exponent.slice(1));
    format = 'DecimalExponent';
  } else {
    scale += DECIMAL[suffix ?? '']!;
    format = 'DecimalSI';
  }
  if (sign === '-') mantissa = -mantissa;
  if (scale < -9) {
    // apimachinery keeps nano precision at most and rounds away from zero
    const div = 10n ** BigInt(-9 - scale);
    const q = mantissa / div;
    mantissa = mantissa % div === 0n ? q : q + (mantissa > 0n ? 1n : -1n);
    scale = -9;
  }
  if (mantissa === 0n) return '0';
  if (format === 'BinarySI') {
    const whole =
      scale >= 0
        ? mantissa * 10n ** BigInt(scale)
        : mantissa % 10n ** BigInt(-scale) === 0n
          ? mantissa / 10n ** BigInt(-scale)
          : undefined;
    if (whole !== undefined && (whole >= 1024n || whole <= -1024n)) {
      let n = whole;
      let k = 0;
      while (k < BINARY_SUFFIXES.length - 1 && n % 1024n === 0n) {
        n /= 1024n;
        k++;
      }
      return `${n}${BINARY_SUFFIXES[k]}`;
    }
    format = 'DecimalSI';
  }
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    scale++;
  }
  while (((scale % 3) + 3) % 3 !== 0) {
    mantissa *= 10n;
    scale--;
  }
  if (format === 'DecimalExponent') return scale === 0 ? `${mantissa}` : `${mantissa}e${scale}`;
  if (scale > 18) {
    mantissa *= 10n ** BigInt(scale - 18);
    scale = 18;
  }
  return `${mantissa}${DECIMAL_SUFFIX.get(scale)}`;
}
