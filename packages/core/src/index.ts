export * from './geometry.js';
export * from './target.js';
export * from './prompt.js';
export * from './ranking.js';
export * from './progress.js';
export * from './plan.js';
export * from './profiles.js';
export * from './image-size.js';
export * from './scenes.js';
export * from './flaws.js';
export * from './redact.js';
export {
  readSettings,
  SettingsError,
  type Env,
  type Schema,
  type Setting,
  type SettingsOf,
  type WholeBounds,
} from './settings.js';
/** The kinds of setting: `setting.whole('PORT', 8000, { min: 0, max: 65535 })` and so on. */
export * as setting from './settings.js';
