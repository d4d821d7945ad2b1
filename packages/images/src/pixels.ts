/** A computed sample as an 8-bit value: rounded, and clamped to 0–255. */
export function clampByte(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
}
