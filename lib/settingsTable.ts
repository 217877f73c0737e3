import type { z } from 'zod';
import { SETTINGS, variableOf, type SettingKey } from './config.js';

export const TABLE_START = '<!-- settings:start -->';
export const TABLE_END = '<!-- settings:end -->';

const cell = (text: string) => text.replaceAll('|', '\\|');

/** The README's settings table, made from the settings schema: `npm run docs:settings` writes it. */
export function settingsTable(): string {
  const rows = (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const spec: { default?: string; defaultLabel?: string; meaning: string; schema: z.ZodType } =
      SETTINGS[key];
    const shown = spec.defaultLabel ?? (spec.default ? `\`${spec.default}\`` : 'none');
    return `| \`${variableOf(key)}\` | ${cell(shown)} | ${cell(spec.meaning)} |`;
  });
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The README with its settings section replaced by the current table. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README has no ${TABLE_START} ... ${TABLE_END}`);
  return `${readme.slice(0, start + TABLE_START.length)}\n\n${settingsTable()}\n\n${readme.slice(end)}`;
}
