/**
 * The real photographs the selection-quality benchmark is built from: Debian's desktop-background packages,
 * which install offline. Only the files that are photographs are listed (each was looked at: no
 * illustrations, renders or patterns), so that the judge is measured on what cameras produce.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface SourcePhoto {
  package: string;
  path: string;
}

const W = '/usr/share/wallpapers';
const B = '/usr/share/backgrounds';

export const SOURCES: readonly SourcePhoto[] = [
  ...[
    'Bridge_by_Sander_Klootwijk',
    'Dragonfly_by_Bolly',
    'Picture_0B_by_freespace',
    'Wine_by_Jakkub_Mede',
    'aitzgorri_by_Aitzol_Berasategi',
    'free_by_Peter_Nerlich',
    'friends_by_Aitzol_Berasategi',
    'greentock_by_Peter_Nerlich',
    'life_by_Aitzol_Berasategi',
    'picosdeeuropa_by_Aitzol_Berasategi',
    'seeding_by_Clements_Engelhardt',
    'sunset_by_Aitzol_Berasategi',
  ].map((name) => ({ package: 'lomiri-wallpapers-16.04', path: `${B}/${name}.jpg` })),
  { package: 'lomiri-wallpapers-20.04', path: `${B}/Kleiber_by_Lukas_Baubkus.jpg` },
  ...['Blinds', 'Dune', 'Garden', 'LadyBird', 'RainDrops', 'Storm', 'TwoWings', 'YellowFlower'].map((name) => ({
    package: 'mate-backgrounds',
    path: `${B}/mate/nature/${name}.jpg`,
  })),
  ...[
    'BytheWater',
    'ColdRipple',
    'ColorfulCups',
    'DarkestHour',
    'EveningGlow',
    'FallenLeaf',
    'Grey',
    'Kite',
    'OneStandsOut',
    'Path',
    'summer_1am',
  ].map((name) => ({ package: 'plasma-workspace-wallpapers', path: `${W}/${name}/contents/images/2560x1600.jpg` })),
];

/**
 * Installs the packages that hold missing photographs when running as root; otherwise returns the command the user must run.
 */
export function ensureSources(log: (line: string) => void): { ok: true } | { ok: false; command: string } {
  const missing = [...new Set(SOURCES.filter((s) => !existsSync(s.path)).map((s) => s.package))];
  if (missing.length === 0) return { ok: true };
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) return { ok: false, command: `sudo ${command}` };
  log(`installing the photographs: ${command}`);
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit' });
  const still = SOURCES.filter((s) => !existsSync(s.path));
  if (still.length > 0)
    return { ok: false, command: `${command} (still missing: ${still.map((s) => s.path).join(', ')})` };
  return { ok: true };
}
