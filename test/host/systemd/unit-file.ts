import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository's folder of systemd units (this file is test/host/systemd/unit-file.ts). */
export const UNITS_DIR = fileURLToPath(new URL('../../../host/systemd/', import.meta.url));

/** A unit file: each section's keys, each key with every value it is given, in order (systemd allows repeats). */
export type UnitFile = Map<string, Map<string, string[]>>;

/**
 * Reads a unit file as systemd.syntax(7) has it, for the little these units use: `[Section]` lines,
 * `Key=value` lines, comments starting with `#` or `;`, blank lines. A line continued with a backslash,
 * or any other line, throws: the test then says what it could not read rather than skipping it.
 */
export function parseUnitFile(text: string, name = 'unit'): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const where = `${name}:${index + 1}`;
    if (line.endsWith('\\')) throw new Error(`${where}: a continued line; this reader does not join them`);
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1] ?? '', section);
      return;
    }
    const pair = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!pair || section === undefined) throw new Error(`${where}: not a Key=value line in a section: ${line}`);
    const [, key = '', value = ''] = pair;
    section.set(key, [...(section.get(key) ?? []), value.trim()]);
  });
  return unit;
}

export function readUnitFile(fileName: string): { text: string; unit: UnitFile } {
  const text = readFileSync(`${UNITS_DIR}${fileName}`, 'utf8');
  return { text, unit: parseUnitFile(text, fileName) };
}

/** Every value of Section.Key, in order; [] when it is not set. */
export function valuesOf(unit: UnitFile, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The one value of Section.Key; throws when it is missing or set more than once. */
export function valueOf(unit: UnitFile, section: string, key: string): string {
  const values = valuesOf(unit, section, key);
  if (values.length !== 1) throw new Error(`[${section}] ${key}= is set ${values.length} times, expected once`);
  return values[0] ?? '';
}

/** The words of a space-separated list setting (ReadWritePaths=, CapabilityBoundingSet=…), over all its lines. */
export function wordsOf(unit: UnitFile, section: string, key: string): string[] {
  return valuesOf(unit, section, key).flatMap((value) => value.split(/\s+/).filter((word) => word !== ''));
}

/** The comment lines of a unit file, without their `#`. */
export function commentsOf(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.trimStart().startsWith('#'))
    .map((line) => line.trimStart().slice(1))
    .join('\n');
}

/**
 * The hours between two runs of an OnCalendar= of the form `*-*-* 00/N:00:00` (every N hours from
 * midnight, N dividing 24, so the interval is the same across midnight); throws on any other form.
 */
export function everyHoursOf(onCalendar: string): number {
  const match = /^\*-\*-\* 0?0\/(\d+):00(?::00)?$/.exec(onCalendar);
  const hours = Number(match?.[1]);
  if (!match || !(hours > 0) || 24 % hours !== 0) throw new Error(`OnCalendar=${onCalendar}: expected *-*-* 00/N:00:00 with N dividing 24`);
  return hours;
}
