import { dirname, formatBytes, quotaLevel, quotaPercent } from '../utils';
import { VERSION } from '../version';

declare const require: (path: string) => any;

describe('formatBytes', () => {
  it('uses decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1500)).toBe('1.5 KB');
    expect(formatBytes(7.8e9)).toBe('7.8 GB');
    expect(formatBytes(10e9)).toBe('10.0 GB');
    expect(formatBytes(250e12)).toBe('250 TB');
  });
  it('handles missing values', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(undefined)).toBe('—');
  });
});

describe('quota', () => {
  it('computes the percentage', () => {
    expect(quotaPercent({ used: 78, total: 100, unlimited: false })).toBe(78);
    expect(quotaPercent({ used: 200, total: 100, unlimited: false })).toBe(100);
    expect(quotaPercent({ used: 5, total: 0, unlimited: true })).toBeNull();
    expect(quotaPercent(null)).toBeNull();
  });
  it('has warning and critical thresholds', () => {
    expect(quotaLevel(null)).toBe('ok');
    expect(quotaLevel(74)).toBe('ok');
    expect(quotaLevel(75)).toBe('warning');
    expect(quotaLevel(89)).toBe('warning');
    expect(quotaLevel(90)).toBe('critical');
    expect(quotaLevel(50, 40, 60)).toBe('warning');
  });
});

describe('dirname', () => {
  it('returns the folder of an API path', () => {
    expect(dirname('a/b/c.ipynb')).toBe('a/b');
    expect(dirname('c.ipynb')).toBe('');
  });
});

describe('version', () => {
  it('matches package.json', () => {
    const pkg = require('../../package.json');
    expect(VERSION).toBe(pkg.version);
  });
});
