/** The vision provider a deployment selects with VISION_PROVIDER (or ANTHROPIC_API_KEY). */
import type { ProfileOverrides, VisionProfile } from '@triage/core';
import { AnthropicProvider } from './anthropic.js';
import { OfflineProvider } from './offline.js';
import type { VisionProvider } from './provider.js';

export interface VisionSettings {
  visionProvider: 'offline' | 'anthropic';
  anthropicApiKey?: string | undefined;
  anthropicBaseUrl?: string | undefined;
  visionModels: string[];
  visionProfileOverrides?: ProfileOverrides;
  profile: VisionProfile;
}

export function createVisionProvider(settings: VisionSettings): VisionProvider {
  if (settings.visionProvider === 'anthropic') {
    return new AnthropicProvider({
      apiKey: settings.anthropicApiKey ?? '',
      models: settings.visionModels,
      profileOverrides: settings.visionProfileOverrides ?? {},
      ...(settings.anthropicBaseUrl !== undefined && { baseURL: settings.anthropicBaseUrl }),
    });
  }
  return new OfflineProvider({ profile: settings.profile });
}
