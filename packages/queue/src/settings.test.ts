import { describe, expect, it } from 'vitest';
import { OFFLINE_PROFILE } from '@triage/core';
import { readSharedSettings, SettingsError } from './settings.js';

describe('shared settings', () => {
  it('has embedded defaults: local storage, the offline provider, Redis on localhost, 24 h retention', () => {
    const s = readSharedSettings({});
    expect(s.redis).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6379', explicit: false });
    expect(s.redisFailoverTimeoutMs).toBe(60_000);
    expect(s.prefix).toBe('triage');
    expect(s.retentionSeconds).toBe(24 * 3600);
    expect(s.storageDriver).toBe('local');
    expect(s.storageReadLatencyMs).toBe(0);
    expect(s.storageTransforms).toBe(false);
    expect(s.visionProvider).toBe('offline');
    expect(s.profile).toEqual(OFFLINE_PROFILE);
    expect(s.layouts.coarse).toEqual({ minThumb: 84 });
  });

  it('accepts a latency of 0 and refuses a negative one, naming the variable', () => {
    expect(readSharedSettings({ STORAGE_READ_LATENCY_MS: '0' }).storageReadLatencyMs).toBe(0);
    expect(() => readSharedSettings({ STORAGE_READ_LATENCY_MS: '-5' })).toThrow(/STORAGE_READ_LATENCY_MS/);
  });

  it('needs the Supabase URL and service key for the supabase driver', () => {
    expect(() => readSharedSettings({ STORAGE_DRIVER: 'supabase' })).toThrow(/needs SUPABASE_URL/);
    expect(() => readSharedSettings({ STORAGE_DRIVER: 'supabase', SUPABASE_URL: 'https://x.supabase.co' })).toThrow(
      /needs SUPABASE_SERVICE_ROLE_KEY/,
    );
    const s = readSharedSettings({
      STORAGE_DRIVER: 'supabase',
      SUPABASE_URL: 'https://x.supabase.co',
      SUPABASE_SERVICE_ROLE_KEY: 'k',
      STORAGE_TRANSFORMS: 'on',
    });
    expect(s.storageDriver).toBe('supabase');
    expect(s.storageTransforms).toBe(true);
    expect(() => readSharedSettings({ STORAGE_DRIVER: 's3' })).toThrow(/STORAGE_DRIVER must be one of local, supabase/);
  });

  it('selects Anthropic when a key is set, and plans grids for the smallest of the voting models', () => {
    const one = readSharedSettings({ ANTHROPIC_API_KEY: 'sk' });
    expect(one.visionProvider).toBe('anthropic');
    expect(one.visionModels).toEqual(['claude-haiku-4-5']);
    expect(one.profile.maxEdge).toBe(1568);
    const two = readSharedSettings({ ANTHROPIC_API_KEY: 'sk', VISION_MODELS: 'claude-opus-4-8, claude-haiku-4-5' });
    expect(two.visionModels).toEqual(['claude-opus-4-8', 'claude-haiku-4-5']);
    expect(two.profile.maxTokens).toBe(1568);
    expect(readSharedSettings({ ANTHROPIC_API_KEY: 'sk', VISION_PROVIDER: 'offline' }).visionProvider).toBe('offline');
    expect(() => readSharedSettings({ VISION_PROVIDER: 'anthropic' })).toThrow(/needs ANTHROPIC_API_KEY/);
  });

  it('lets the operator correct a model’s profile and price, and explains an unknown model', () => {
    const s = readSharedSettings({
      ANTHROPIC_API_KEY: 'sk',
      VISION_MAX_EDGE: '1000',
      VISION_PRICE_INPUT: '0.8',
      VISION_PRICE_OUTPUT: '4',
    });
    expect(s.profile).toMatchObject({ maxEdge: 1000, inputPerMTok: 0.8, outputPerMTok: 4 });
    expect(() => readSharedSettings({ ANTHROPIC_API_KEY: 'sk', VISION_MODELS: 'gpt-vision' })).toThrow(
      /VISION_MODELS: no vision profile is known/,
    );
    const custom = readSharedSettings({
      ANTHROPIC_API_KEY: 'sk',
      VISION_MODELS: 'my-model',
      VISION_MAX_EDGE: '1568',
      VISION_MAX_TOKENS: '1568',
      VISION_PATCH: '28',
      VISION_PRICE_INPUT: '1',
      VISION_PRICE_OUTPUT: '5',
    });
    expect(custom.profile.id).toBe('my-model');
  });

  it('takes grid layout overrides as whole numbers', () => {
    const s = readSharedSettings({ GRID_COARSE_ROWS: '8', GRID_COARSE_COLS: '10', GRID_FINE_MIN_THUMB: '256' });
    expect(s.layouts.coarse).toEqual({ minThumb: 84, rows: 8, cols: 10 });
    expect(s.layouts.fine).toEqual({ minThumb: 256 });
    expect(() => readSharedSettings({ GRID_COARSE_ROWS: '2.5' })).toThrow(SettingsError);
    expect(() => readSharedSettings({ TRIAGE_PREFIX: 'a b' })).toThrow(/TRIAGE_PREFIX/);
  });
});
