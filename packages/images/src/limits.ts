/** Largest input accepted, in pixels: bigger images are refused before they are decoded, by every decoder here. */
export const MAX_INPUT_PIXELS = 100_000_000;
